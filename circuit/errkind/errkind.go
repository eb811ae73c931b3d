// Package errkind is the vocabulary of errors that cross a package
// boundary: each error a caller gets from Dial (of circuit/client, hidden
// or the root package obol) carries a Kind that tells the caller what to
// do about it, as arti's ErrorKind does. The kind travels with the error
// and the cause stays wrapped, so errors.Is and errors.As on the cause go
// on working; Of reads the kind back.
//
// The front ends translate kinds: circuit/socks maps each kind to a SOCKS5,
// SOCKS4 and HTTP CONNECT reply in one table. Nothing below the front ends
// speaks in reply codes.
//
// The package imports nothing of obol's, so every layer above it can use
// it; it sits in the circuit layer, the lowest one that reports errors to
// a caller of Dial.
package errkind

import (
	"context"
	"errors"
	"net"
	"os"
	"strconv"
	"syscall"
)

// Kind says what a caller can do about an error.
type Kind uint8

// The kinds. Each names what went wrong only as far as the caller needs it
// to choose what to do next.
const (
	// Unknown: the error has no kind. It is a failure nobody classified;
	// treat it as final for this request.
	Unknown Kind = iota
	// Retry: the request was fine and nothing in particular failed, but
	// the network is not ready for it (too few relays known yet, no path
	// meeting the rules). Try the same request again later.
	Retry
	// OtherPath: the circuits or relays tried failed (builds failed, a
	// circuit died, the exit could not serve the stream). A new attempt
	// builds new circuits and may succeed at once.
	OtherPath
	// Refused: the destination refused the connection. Trying again
	// through another path reaches the same destination.
	Refused
	// NotAllowed: a policy forbids the request: the exit's exit policy, a
	// hidden-service name given to an exit, a hidden service that admits
	// listed clients only. Do not retry it as it is.
	NotAllowed
	// NotFound: the destination does not exist or cannot be found: the
	// name did not resolve at the exit, the host is unreachable, a
	// hidden-service address is mistyped, or its service is unknown,
	// offline or did not answer.
	NotFound
	// NoRoute: the exit has no route to the destination's network (an
	// IPv6 address at an IPv4-only exit, say). Another exit may have one.
	NoRoute
	// Timeout: the request's context ended, or the exit or destination
	// timed out, before the stream was open.
	Timeout
	// Closed: the client, manager or connection was closed. Requests on
	// it will fail from now on; start a new one.
	Closed
	// Malformed: the request itself is bad (an address that does not
	// parse, port 0, a host name too long). Fix the request.
	Malformed
	// Unsupported: the request asks for something obol does not do (a
	// network other than TCP, a SOCKS command other than CONNECT).
	Unsupported

	numKinds
)

// NumKinds is the number of kinds, Unknown included: kinds are 0 to
// NumKinds-1, so a table indexed by Kind has NumKinds entries.
const NumKinds = int(numKinds)

var names = [numKinds]string{
	Unknown:     "unknown",
	Retry:       "retry",
	OtherPath:   "other path",
	Refused:     "refused",
	NotAllowed:  "not allowed",
	NotFound:    "not found",
	NoRoute:     "no route",
	Timeout:     "timeout",
	Closed:      "closed",
	Malformed:   "malformed",
	Unsupported: "unsupported",
}

func (k Kind) String() string {
	if k < numKinds {
		return names[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Error is an error with a kind. Its message is its cause's.
type Error struct {
	Kind Kind
	Err  error // the cause
}

func (e *Error) Error() string {
	if e.Err == nil {
		return e.Kind.String()
	}
	return e.Err.Error()
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// ErrorKind returns e.Kind.
func (e *Error) ErrorKind() Kind { return e.Kind }

// New returns an error of kind k with message text, for sentinels.
func New(k Kind, text string) error { return &Error{Kind: k, Err: errors.New(text)} }

// Wrap returns err with kind k, or nil if err is nil. The kind given here
// is the one Of reports, whatever kinds err wraps; Unknown adds no kind,
// and err is returned as it is.
func Wrap(k Kind, err error) error {
	if err == nil || k == Unknown {
		return err
	}
	return &Error{Kind: k, Err: err}
}

// kinded is an error that knows its kind: *Error, or any error type of
// another package with an ErrorKind method.
type kinded interface {
	error
	ErrorKind() Kind
}

// Of returns err's kind: that of the outermost error in its chain with an
// ErrorKind method (*Error or another type). An error without one is
// classified by the standard library's errors it wraps: deadlines and
// net timeouts are Timeout, ECONNREFUSED is Refused, ENETUNREACH is
// NoRoute, EHOSTUNREACH and a DNS "not found" are NotFound, net.ErrClosed
// is Closed. Anything else, and nil, is Unknown.
func Of(err error) Kind {
	if err == nil {
		return Unknown
	}
	var k kinded
	if errors.As(err, &k) {
		return k.ErrorKind()
	}
	return stdKind(err)
}

func stdKind(err error) Kind {
	var ne net.Error
	var de *net.DNSError
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return Refused
	case errors.Is(err, syscall.ENETUNREACH):
		return NoRoute
	case errors.Is(err, syscall.EHOSTUNREACH), errors.As(err, &de) && de.IsNotFound:
		return NotFound
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded),
		errors.As(err, &ne) && ne.Timeout():
		return Timeout
	case errors.Is(err, net.ErrClosed):
		return Closed
	}
	return Unknown
}
