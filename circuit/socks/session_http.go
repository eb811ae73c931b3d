package socks

import "context"

// httpConnect serves an HTTP CONNECT request; Basic proxy credentials, if
// any, are the isolation key.
func (ss *session) httpConnect(ctx context.Context) (Protocol, error) {
	r, err := ReadHTTPConnect(ss.br)
	if err != nil {
		ss.writeReply(AppendHTTPResponse(nil, HTTPStatus(err)))
		return HTTPConnect, err
	}
	var key IsolationKey
	if r.HasAuth {
		key = NewIsolationKey(r.User, r.Pass)
	}
	stream, err := ss.dial(ctx, Request{Target: r.Target, Isolation: key, Protocol: HTTPConnect})
	if err != nil {
		ss.writeReply(AppendHTTPResponse(nil, HTTPStatus(err)))
		return HTTPConnect, err
	}
	return HTTPConnect, ss.finish(ctx, stream, ss.writeReply(AppendHTTPResponse(nil, 200)))
}
