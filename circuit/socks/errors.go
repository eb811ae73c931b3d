package socks

import (
	"context"
	"errors"
	"net"
	"os"
	"syscall"
)

// Errors a Dialer returns, wrapped with %w if it likes, to choose the reply
// the client sees. Any other error is a general failure.
var (
	// ErrNotAllowed: the exit policy (or local policy) refuses the
	// destination. SOCKS5 reply 0x02, HTTP 403.
	ErrNotAllowed = errors.New("socks: connection not allowed by ruleset")
	// ErrNetUnreachable: no route to the destination's network. SOCKS5 0x03.
	ErrNetUnreachable = errors.New("socks: network unreachable")
	// ErrHostUnreachable: the destination cannot be reached, including a
	// name the exit could not resolve. SOCKS5 0x04.
	ErrHostUnreachable = errors.New("socks: host unreachable")
	// ErrConnRefused: the destination refused the connection. SOCKS5 0x05.
	ErrConnRefused = errors.New("socks: connection refused")
	// ErrTTLExpired: the stream or circuit timed out. SOCKS5 0x06, HTTP 504.
	// Context deadlines and net timeouts map here too.
	ErrTTLExpired = errors.New("socks: TTL expired")
	// ErrCommandNotSupported: the request's command is not CONNECT. SOCKS5 0x07.
	ErrCommandNotSupported = errors.New("socks: command not supported")
	// ErrAddrTypeNotSupported: the address type is unknown or cannot be
	// served (e.g. no exit handles IPv6). SOCKS5 0x08.
	ErrAddrTypeNotSupported = errors.New("socks: address type not supported")
	// ErrMalformed: the client sent bytes that are not a valid request.
	// SOCKS5 0x01 where a reply is possible, HTTP 400.
	ErrMalformed = errors.New("socks: malformed request")
	// ErrServerClosed is returned by Serve after Close.
	ErrServerClosed = errors.New("socks: server closed")
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

// ReplyCode5 maps an error to the SOCKS5 reply code the client receives.
// A nil error is success.
func ReplyCode5(err error) byte {
	switch {
	case err == nil:
		return Rep5Succeeded
	case errors.Is(err, ErrNotAllowed):
		return Rep5NotAllowed
	case errors.Is(err, ErrNetUnreachable), errors.Is(err, syscall.ENETUNREACH):
		return Rep5NetUnreachable
	case errors.Is(err, ErrHostUnreachable), errors.Is(err, syscall.EHOSTUNREACH), isNotFound(err):
		return Rep5HostUnreachable
	case errors.Is(err, ErrConnRefused), errors.Is(err, syscall.ECONNREFUSED):
		return Rep5ConnRefused
	case isTimeout(err):
		return Rep5TTLExpired
	case errors.Is(err, ErrCommandNotSupported):
		return Rep5CmdNotSupported
	case errors.Is(err, ErrAddrTypeNotSupported):
		return Rep5AddrTypeNotSupported
	}
	return Rep5GeneralFailure
}

// ReplyCode4 maps an error to the SOCKS4 reply code: SOCKS4 has a single
// failure code for every reason.
func ReplyCode4(err error) byte {
	if err == nil {
		return Rep4Granted
	}
	return Rep4Rejected
}

// HTTPStatus maps an error to the status of an HTTP CONNECT response.
func HTTPStatus(err error) int {
	switch {
	case err == nil:
		return 200
	case errors.Is(err, ErrMalformed), errors.Is(err, ErrAddrTypeNotSupported):
		return 400
	case errors.Is(err, ErrCommandNotSupported):
		return 405
	case errors.Is(err, ErrNotAllowed):
		return 403
	case ReplyCode5(err) == Rep5TTLExpired:
		return 504
	}
	return 502
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, ErrTTLExpired) ||
		errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, os.ErrDeadlineExceeded) ||
		(errors.As(err, &ne) && ne.Timeout())
}

func isNotFound(err error) bool {
	var de *net.DNSError
	return errors.As(err, &de) && de.IsNotFound
}
