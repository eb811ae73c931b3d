package socks

import (
	"context"
	"fmt"
)

// socks4 serves a SOCKS4 or SOCKS4a CONNECT. SOCKS4 has one failure code.
func (ss *session) socks4(ctx context.Context) (Protocol, error) {
	r, err := ReadRequest4(ss.br)
	if err != nil {
		ss.writeReply(AppendReply4(nil, Rep4Rejected))
		return SOCKS4, err
	}
	proto := SOCKS4
	if r.Is4a {
		proto = SOCKS4a
	}
	if r.Cmd != CmdConnect {
		ss.writeReply(AppendReply4(nil, Rep4Rejected))
		return proto, fmt.Errorf("%w: command %d", ErrCommandNotSupported, r.Cmd)
	}
	var key IsolationKey
	if r.UserID != "" {
		key = NewIsolationKey(r.UserID, "")
	}
	stream, err := ss.dial(ctx, Request{Target: r.Target, Isolation: key, Protocol: proto})
	if err != nil {
		ss.writeReply(AppendReply4(nil, ReplyCode4(err)))
		return proto, err
	}
	return proto, ss.finish(ctx, stream, ss.writeReply(AppendReply4(nil, Rep4Granted)))
}
