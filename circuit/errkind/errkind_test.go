package errkind

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
)

// endError stands for an error type of another package that knows its
// kind without wrapping an *Error.
type endError struct{}

func (endError) Error() string   { return "stream ended" }
func (endError) ErrorKind() Kind { return Refused }

func TestOf(t *testing.T) {
	cause := errors.New("cause")
	tests := []struct {
		name string
		err  error
		want Kind
	}{
		{"nil", nil, Unknown},
		{"plain error", errors.New("boom"), Unknown},
		{"io.EOF", io.EOF, Unknown},
		{"context canceled", context.Canceled, Unknown},
		{"wrapped", Wrap(Retry, cause), Retry},
		{"wrapped twice, outer wins", Wrap(Timeout, fmt.Errorf("x: %w", Wrap(NotFound, cause))), Timeout},
		{"under fmt.Errorf", fmt.Errorf("client: %w", Wrap(OtherPath, cause)), OtherPath},
		{"sentinel", New(Malformed, "bad"), Malformed},
		{"sentinel wrapped", fmt.Errorf("dial: %w", New(Closed, "closed")), Closed},
		{"joined", errors.Join(cause, Wrap(NoRoute, cause)), NoRoute},
		{"other package's type", fmt.Errorf("read: %w", endError{}), Refused},
		{"kind beats the standard library", Wrap(NotAllowed, context.DeadlineExceeded), NotAllowed},
		{"deadline", fmt.Errorf("x: %w", context.DeadlineExceeded), Timeout},
		{"os deadline", os.ErrDeadlineExceeded, Timeout},
		{"net timeout", &net.OpError{Op: "dial", Err: timeoutErr{}}, Timeout},
		{"ECONNREFUSED", &net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}, Refused},
		{"ENETUNREACH", os.NewSyscallError("connect", syscall.ENETUNREACH), NoRoute},
		{"EHOSTUNREACH", os.NewSyscallError("connect", syscall.EHOSTUNREACH), NotFound},
		{"DNS not found", &net.DNSError{Err: "no such host", Name: "x.test", IsNotFound: true}, NotFound},
		{"DNS other", &net.DNSError{Err: "server misbehaving", Name: "x.test"}, Unknown},
		{"net.ErrClosed", fmt.Errorf("read: %w", net.ErrClosed), Closed},
	}
	for _, tt := range tests {
		if got := Of(tt.err); got != tt.want {
			t.Errorf("%s: Of(%v) = %v, want %v", tt.name, tt.err, got, tt.want)
		}
	}
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

// The kind never hides the cause: errors.Is and errors.As reach it, and
// the message is the cause's.
func TestWrapKeepsCause(t *testing.T) {
	cause := &net.DNSError{Err: "no such host", Name: "x.test", IsNotFound: true}
	err := fmt.Errorf("client: %w", Wrap(OtherPath, cause))
	var de *net.DNSError
	if !errors.As(err, &de) || de != cause {
		t.Fatalf("errors.As lost the cause of %v", err)
	}
	if got, want := err.Error(), "client: "+cause.Error(); got != want {
		t.Fatalf("message %q, want %q", got, want)
	}
	if !errors.Is(Wrap(Timeout, context.DeadlineExceeded), context.DeadlineExceeded) {
		t.Fatal("errors.Is lost the cause")
	}
	if Wrap(Retry, nil) != nil {
		t.Fatal("Wrap(nil) is not nil")
	}
	// Unknown adds no kind: the cause's own kind shows through.
	if err := Wrap(Unknown, os.ErrDeadlineExceeded); Of(err) != Timeout || err != os.ErrDeadlineExceeded {
		t.Fatalf("Wrap(Unknown) hid the cause's kind: %v", Of(err))
	}
	if got := (&Error{Kind: Closed}).Error(); got != "closed" {
		t.Fatalf("an Error without a cause says %q", got)
	}
}

func TestKindNames(t *testing.T) {
	seen := map[string]Kind{}
	for k := Kind(0); int(k) < NumKinds; k++ {
		s := k.String()
		if strings.HasPrefix(s, "kind(") {
			t.Errorf("kind %d has no name", k)
		}
		if o, dup := seen[s]; dup {
			t.Errorf("kinds %d and %d are both %q", o, k, s)
		}
		seen[s] = k
	}
	if got := Kind(NumKinds).String(); got != fmt.Sprintf("kind(%d)", NumKinds) {
		t.Errorf("out-of-range kind prints %q", got)
	}
}
