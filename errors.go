package obol

import "github.com/obolnet/obol/circuit/errkind"

// ErrorKind says what a caller can do about an error of Dial, of the
// reads and writes of the connection Dial returns (Dial returns before
// the exit has answered, so a refusal arrives with the first read), and
// of Listen. KindOf reads it; the error's text and its causes stay as
// they were, for errors.Is and errors.As.
type ErrorKind = errkind.Kind

// The kinds.
const (
	// KindUnknown: nobody classified the failure, or err is nil.
	KindUnknown = errkind.Unknown
	// KindRetry: the network is not ready for the request yet (too few
	// relays known): try again later.
	KindRetry = errkind.Retry
	// KindOtherPath: the circuits tried failed; a new Dial builds new
	// ones and may succeed at once.
	KindOtherPath = errkind.OtherPath
	// KindRefused: the destination refused the connection.
	KindRefused = errkind.Refused
	// KindNotAllowed: a policy forbids the request: the exit's policy, or
	// a hidden service that admits listed clients only.
	KindNotAllowed = errkind.NotAllowed
	// KindNotFound: the name did not resolve, the host is unreachable, or
	// the hidden service is mistyped, unknown, offline or silent.
	KindNotFound = errkind.NotFound
	// KindNoRoute: the exit has no route to the destination's network;
	// another exit may have one.
	KindNoRoute = errkind.NoRoute
	// KindTimeout: ctx ended, or the exit or destination timed out.
	KindTimeout = errkind.Timeout
	// KindClosed: the client (or the connection) is closed.
	KindClosed = errkind.Closed
	// KindMalformed: the address is bad; fix the request.
	KindMalformed = errkind.Malformed
	// KindUnsupported: the network is not TCP.
	KindUnsupported = errkind.Unsupported
)

// KindOf returns the kind of err (KindUnknown for nil): the outermost
// kind in its chain, or for the standard library's errors their kind
// (deadlines are KindTimeout, net.ErrClosed KindClosed, ...).
func KindOf(err error) ErrorKind { return errkind.Of(err) }
