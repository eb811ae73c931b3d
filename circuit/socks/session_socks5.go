package socks

import (
	"context"
	"fmt"
)

// socks5 runs the RFC 1928 handshake: greeting, optional RFC 1929
// sub-negotiation, request, reply.
func (ss *session) socks5(ctx context.Context) (Protocol, error) {
	key, err := ss.negotiate5()
	if err != nil {
		return SOCKS5, err
	}
	r, err := ReadRequest5(ss.br)
	if err != nil {
		ss.writeReply(AppendReply5(nil, ReplyCode5(err)))
		return SOCKS5, err
	}
	if r.Cmd != CmdConnect {
		err := fmt.Errorf("%w: command %d", ErrCommandNotSupported, r.Cmd)
		ss.writeReply(AppendReply5(nil, Rep5CmdNotSupported))
		return SOCKS5, err
	}
	stream, err := ss.dial(ctx, Request{Target: r.Target, Isolation: key, Protocol: SOCKS5})
	if err != nil {
		ss.writeReply(AppendReply5(nil, ReplyCode5(err)))
		return SOCKS5, err
	}
	return SOCKS5, ss.finish(ctx, stream, ss.writeReply(AppendReply5(nil, Rep5Succeeded)))
}

// negotiate5 selects a method and returns the isolation key it yields.
func (ss *session) negotiate5() (IsolationKey, error) {
	methods, err := ReadGreeting(ss.br)
	if err != nil {
		return IsolationKey{}, err
	}
	m := ChooseMethod(methods)
	if err := ss.writeReply([]byte{version5, m}); err != nil {
		return IsolationKey{}, err
	}
	switch m {
	case MethodNoAuth:
		return IsolationKey{}, nil
	case MethodUserPass:
		return ss.userPass()
	}
	return IsolationKey{}, fmt.Errorf("%w: no acceptable method", ErrMalformed)
}

// userPass reads the credentials and always accepts them: they are an
// isolation key, not a login.
func (ss *session) userPass() (IsolationKey, error) {
	user, pass, err := ReadUserPass(ss.br)
	if err != nil {
		ss.writeReply([]byte{userPassVersion, 0x01})
		return IsolationKey{}, err
	}
	if err := ss.writeReply([]byte{userPassVersion, 0x00}); err != nil {
		return IsolationKey{}, err
	}
	return NewIsolationKey(user, pass), nil
}
