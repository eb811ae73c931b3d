package socks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"testing"

	"github.com/obolnet/obol/circuit/errkind"
)

// specReplies reads the replies to each kind from 08's appendix.
func specReplies(t *testing.T) map[errkind.Kind]reply {
	t.Helper()
	byName := map[string]errkind.Kind{}
	for k := errkind.Kind(0); int(k) < errkind.NumKinds; k++ {
		byName[k.String()] = k
	}
	out := map[errkind.Kind]reply{}
	for _, r := range specRows(t, "kind") {
		k, ok := byName[r[0]]
		if !ok {
			t.Fatalf("spec lists kind %q, which errkind does not have", r[0])
		}
		if _, dup := out[k]; dup {
			t.Fatalf("spec lists kind %q twice", r[0])
		}
		rep5, rep4, status := unhex(t, r[1]), unhex(t, r[2]), 0
		if _, err := fmt.Sscan(r[3], &status); err != nil || len(rep5) != 1 || len(rep4) != 1 {
			t.Fatalf("spec row %q: bad replies", r)
		}
		out[k] = reply{rep5[0], rep4[0], status}
	}
	if len(out) != errkind.NumKinds {
		t.Fatalf("spec lists %d kinds, errkind has %d", len(out), errkind.NumKinds)
	}
	return out
}

// Every kind gets the replies the spec's table gives it, however deep the
// kind sits in the error.
func TestReplyTable(t *testing.T) {
	for k, want := range specReplies(t) {
		err := fmt.Errorf("client: %w", errkind.Wrap(k, errors.New("cause")))
		got := reply{ReplyCode5(err), ReplyCode4(err), HTTPStatus(err)}
		if got != want {
			t.Errorf("%v: replies %#x/%#x/%d, spec says %#x/%#x/%d", k, got.socks5, got.socks4, got.http, want.socks5, want.socks4, want.http)
		}
	}
}

// A Dialer outside obol may fail with the standard library's errors; they
// keep the replies they always had.
func TestReplyToStandardErrors(t *testing.T) {
	tests := []struct {
		err  error
		want reply
	}{
		{&net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}, reply{0x05, 0x5b, 502}},
		{os.NewSyscallError("connect", syscall.ENETUNREACH), reply{0x03, 0x5b, 502}},
		{os.NewSyscallError("connect", syscall.EHOSTUNREACH), reply{0x04, 0x5b, 502}},
		{&net.DNSError{Err: "no such host", Name: "a.test", IsNotFound: true}, reply{0x04, 0x5b, 502}},
		{fmt.Errorf("dial: %w", context.DeadlineExceeded), reply{0x06, 0x5b, 504}},
		{os.ErrDeadlineExceeded, reply{0x06, 0x5b, 504}},
		{io.ErrClosedPipe, reply{0x01, 0x5b, 502}},
		{fmt.Errorf("%w: address type 9", ErrAddrTypeNotSupported), reply{0x08, 0x5b, 400}},
	}
	for _, tt := range tests {
		got := reply{ReplyCode5(tt.err), ReplyCode4(tt.err), HTTPStatus(tt.err)}
		if got != tt.want {
			t.Errorf("%v: replies %#x/%#x/%d, want %#x/%#x/%d", tt.err, got.socks5, got.socks4, got.http, tt.want.socks5, tt.want.socks4, tt.want.http)
		}
	}
}

// A Dialer that fails with a kind (and no SOCKS error) gets the kind's
// reply on the wire, in SOCKS5 and in HTTP CONNECT.
func TestDialerKindsOnTheWire(t *testing.T) {
	wantReplies := specReplies(t)
	d := &recordingDialer{}
	_, addr := startServer(t, Config{Dialer: d})
	for _, k := range []errkind.Kind{errkind.NotAllowed, errkind.NotFound, errkind.Refused, errkind.Timeout, errkind.OtherPath} {
		d.mu.Lock()
		d.err = errkind.Wrap(k, errors.New("dialer failed"))
		d.mu.Unlock()

		c := dialProxy(t, addr)
		c.Write(append(encodeGreeting(MethodNoAuth), encodeRequest5(CmdConnect, tgtHost("example.com", 80))...))
		readN(t, c, 2)
		if got := readN(t, c, 10); got[1] != wantReplies[k].socks5 {
			t.Errorf("SOCKS5 %v: reply %#x, want %#x", k, got[1], wantReplies[k].socks5)
		}
		expectClosed(t, c)

		c = dialProxy(t, addr)
		c.Write(encodeHTTPConnect(tgtHost("a.test", 80), "", "", false))
		got, _ := io.ReadAll(c)
		if want := fmt.Sprintf("HTTP/1.1 %d ", wantReplies[k].http); !bytes.HasPrefix(got, []byte(want)) {
			t.Errorf("HTTP %v: %q, want %q", k, got, want)
		}
	}
}
