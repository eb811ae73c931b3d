package socks

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"sync/atomic"
	"syscall"
	"testing"
)

// pendingDialer returns, for an optimistic request, one end of a pipe at
// once, as a circuit does before the exit's CONNECTED; the test holds the
// other end (the destination) and decides when and how the stream ends.
type pendingDialer struct {
	dest       chan pendingStream // one per stream
	optimistic atomic.Bool        // the last request's Optimistic
}

// pendingStream is a stream as the proxy holds it and its destination end.
type pendingStream struct {
	stream *refusableConn
	dest   net.Conn
}

func newPendingDialer() *pendingDialer { return &pendingDialer{dest: make(chan pendingStream, 1)} }

func (d *pendingDialer) DialStream(_ context.Context, req Request) (net.Conn, error) {
	d.optimistic.Store(req.Optimistic)
	if !req.Optimistic {
		return nil, ErrConnRefused // as an exit's refusal before the reply
	}
	ours, theirs := net.Pipe()
	s := &refusableConn{Conn: ours}
	d.dest <- pendingStream{s, theirs}
	return s, nil
}

// refusableConn is a stream whose reads fail with ErrConnRefused once the
// destination end is closed after refuse: the exit's late END.
type refusableConn struct {
	net.Conn
	refused atomic.Bool
}

func (c *refusableConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if errors.Is(err, io.EOF) && c.refused.Load() {
		return n, ErrConnRefused
	}
	return n, err
}

// optimisticCase opens a stream in one protocol and reads its success reply.
type optimisticCase struct {
	name    string
	request []byte
	reply   []byte
}

func optimisticCases() []optimisticCase {
	host := tgtHost("example.org", 80)
	return []optimisticCase{
		{"socks5", append(encodeGreeting(MethodNoAuth), encodeRequest5(CmdConnect, host)...),
			append([]byte{version5, MethodNoAuth}, AppendReply5(nil, Rep5Succeeded)...)},
		{"socks4a", encodeRequest4(CmdConnect, host, ""), AppendReply4(nil, Rep4Granted)},
		{"http-connect", encodeHTTPConnect(host, "", "", false), AppendHTTPResponse(nil, 200)},
	}
}

// The reply comes before the destination has accepted the stream; the
// application's bytes reach it byte-exact, and its answer comes back.
func TestOptimisticReplyBeforeConnected(t *testing.T) {
	for _, tc := range optimisticCases() {
		t.Run(tc.name, func(t *testing.T) {
			d := newPendingDialer()
			_, addr := startServer(t, Config{Dialer: d})
			c := dialProxy(t, addr)
			c.Write(tc.request)
			// The destination end has not read or written anything: the
			// reply cannot have waited for it.
			if got := readN(t, c, len(tc.reply)); !bytes.Equal(got, tc.reply) {
				t.Fatalf("reply %q, want %q", got, tc.reply)
			}
			if !d.optimistic.Load() {
				t.Fatal("request not marked optimistic")
			}
			dest := (<-d.dest).dest
			defer dest.Close()
			req := bytes.Repeat([]byte("GET / HTTP/1.1\r\n"), 300) // several cells' worth
			go c.Write(req)
			if got := readN(t, dest, len(req)); !bytes.Equal(got, req) {
				t.Fatal("the destination got other bytes than the application sent")
			}
			dest.Write([]byte("answer"))
			if got := readN(t, c, 6); string(got) != "answer" {
				t.Fatalf("answer %q", got)
			}
		})
	}
}

// A stream the exit refuses after the optimistic reply resets the
// application's connection: it must not look like an empty answer.
func TestOptimisticRefusalResetsConnection(t *testing.T) {
	for _, tc := range optimisticCases() {
		t.Run(tc.name, func(t *testing.T) {
			d := newPendingDialer()
			_, addr := startServer(t, Config{Dialer: d})
			c := dialProxy(t, addr)
			c.Write(append(tc.request, "request"...))
			readN(t, c, len(tc.reply))
			ps := <-d.dest
			readN(t, ps.dest, len("request"))
			ps.stream.refused.Store(true)
			ps.dest.Close()
			_, err := c.Read(make([]byte, 16))
			if !errors.Is(err, syscall.ECONNRESET) {
				t.Fatalf("read after refusal: %v, want a reset", err)
			}
		})
	}
}

// With optimistic data disabled the reply waits for the dialer, and a
// refusal is a reply code.
func TestOptimisticDisabled(t *testing.T) {
	d := newPendingDialer()
	_, addr := startServer(t, Config{Dialer: d, DisableOptimisticData: true})
	c := dialProxy(t, addr)
	c.Write(append(encodeGreeting(MethodNoAuth), encodeRequest5(CmdConnect, tgtHost("example.org", 80))...))
	readN(t, c, 2)
	if got := readN(t, c, 10); got[1] != Rep5ConnRefused {
		t.Fatalf("reply %x, want connection refused", got)
	}
	if d.optimistic.Load() {
		t.Fatal("request marked optimistic")
	}
}
