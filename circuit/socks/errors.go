package socks

import (
	"errors"

	"github.com/obolnet/obol/circuit/errkind"
)

// A Dialer's error chooses the reply by its kind (errkind.Of), through
// the table replies; an error without a kind is a general failure. The
// errors below are the front end's own, and those a Dialer outside obol
// may return, each with the kind of its reply.
var (
	// ErrNotAllowed: the exit policy (or local policy) refuses the
	// destination. SOCKS5 reply 0x02, HTTP 403.
	ErrNotAllowed = errkind.New(errkind.NotAllowed, "socks: connection not allowed by ruleset")
	// ErrNetUnreachable: no route to the destination's network. SOCKS5 0x03.
	ErrNetUnreachable = errkind.New(errkind.NoRoute, "socks: network unreachable")
	// ErrHostUnreachable: the destination cannot be reached, including a
	// name the exit could not resolve. SOCKS5 0x04.
	ErrHostUnreachable = errkind.New(errkind.NotFound, "socks: host unreachable")
	// ErrConnRefused: the destination refused the connection. SOCKS5 0x05.
	ErrConnRefused = errkind.New(errkind.Refused, "socks: connection refused")
	// ErrTTLExpired: the stream or circuit timed out. SOCKS5 0x06, HTTP 504.
	// Context deadlines and net timeouts map here too.
	ErrTTLExpired = errkind.New(errkind.Timeout, "socks: TTL expired")
	// ErrCommandNotSupported: the request's command is not CONNECT. SOCKS5 0x07.
	ErrCommandNotSupported = errkind.New(errkind.Unsupported, "socks: command not supported")
	// ErrAddrTypeNotSupported: the address type is unknown or cannot be
	// served (e.g. no exit handles IPv6). SOCKS5 0x08, HTTP 400: the one
	// reply no kind has, chosen by this error itself.
	ErrAddrTypeNotSupported = errkind.New(errkind.Malformed, "socks: address type not supported")
	// ErrMalformed: the client sent bytes that are not a valid request.
	// SOCKS5 0x01 where a reply is possible, HTTP 400.
	ErrMalformed = errkind.New(errkind.Malformed, "socks: malformed request")
	// ErrServerClosed is returned by Serve after Close.
	ErrServerClosed = errkind.New(errkind.Closed, "socks: server closed")
)

// SOCKS5 reply codes (RFC 1928 section 6).
const (
	Rep5Succeeded            byte = 0x00
	Rep5GeneralFailure       byte = 0x01
	Rep5NotAllowed           byte = 0x02
	Rep5NetUnreachable       byte = 0x03
	Rep5HostUnreachable      byte = 0x04
	Rep5ConnRefused          byte = 0x05
	Rep5TTLExpired           byte = 0x06
	Rep5CmdNotSupported      byte = 0x07
	Rep5AddrTypeNotSupported byte = 0x08
)

// SOCKS4 reply codes.
const (
	Rep4Granted  byte = 0x5a
	Rep4Rejected byte = 0x5b // request rejected or failed
)

// reply is what each protocol answers to a failure of one kind.
type reply struct {
	socks5 byte
	socks4 byte
	http   int
}

// replies maps every error kind to its replies: the one place where
// failures become reply codes (08 §3).
var replies = [errkind.NumKinds]reply{
	errkind.Unknown:     {Rep5GeneralFailure, Rep4Rejected, 502},
	errkind.Retry:       {Rep5GeneralFailure, Rep4Rejected, 502},
	errkind.OtherPath:   {Rep5GeneralFailure, Rep4Rejected, 502},
	errkind.Refused:     {Rep5ConnRefused, Rep4Rejected, 502},
	errkind.NotAllowed:  {Rep5NotAllowed, Rep4Rejected, 403},
	errkind.NotFound:    {Rep5HostUnreachable, Rep4Rejected, 502},
	errkind.NoRoute:     {Rep5NetUnreachable, Rep4Rejected, 502},
	errkind.Timeout:     {Rep5TTLExpired, Rep4Rejected, 504},
	errkind.Closed:      {Rep5GeneralFailure, Rep4Rejected, 502},
	errkind.Malformed:   {Rep5GeneralFailure, Rep4Rejected, 400},
	errkind.Unsupported: {Rep5CmdNotSupported, Rep4Rejected, 405},
}

// replyTo returns the replies to a failure.
func replyTo(err error) reply {
	r := replies[errkind.Of(err)]
	if errors.Is(err, ErrAddrTypeNotSupported) {
		r.socks5 = Rep5AddrTypeNotSupported
	}
	return r
}

// ReplyCode5 maps an error to the SOCKS5 reply code the client receives.
// A nil error is success.
func ReplyCode5(err error) byte {
	if err == nil {
		return Rep5Succeeded
	}
	return replyTo(err).socks5
}

// ReplyCode4 maps an error to the SOCKS4 reply code: SOCKS4 has a single
// failure code for every reason.
func ReplyCode4(err error) byte {
	if err == nil {
		return Rep4Granted
	}
	return replyTo(err).socks4
}

// HTTPStatus maps an error to the status of an HTTP CONNECT response.
func HTTPStatus(err error) int {
	if err == nil {
		return 200
	}
	return replyTo(err).http
}
