package hidden_test

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/obolnet/obol/circuit/errkind"
	"github.com/obolnet/obol/circuit/link"
	"github.com/obolnet/obol/circuit/socks"
	"github.com/obolnet/obol/descriptor"
	"github.com/obolnet/obol/hidden"
	"github.com/obolnet/obol/internal/relaynet"
)

// Every failure to reach a service carries the kind of what the caller
// can do, and Route's replies to a proxy follow from the kinds: a missing
// descriptor is host unreachable, as it always was.
func TestDialErrorKinds(t *testing.T) {
	tn := newTestNet(t, 5)
	c, _ := tn.client()
	good := hidden.AddressOf(newKey(t))
	typo := []byte(good)
	typo[3] = map[bool]byte{true: 'b', false: 'a'}[typo[3] == 'a']
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	tests := []struct {
		name, network, address string
		want                   errkind.Kind
		cause                  error
	}{
		{"network not tcp", "udp", good + ":80", errkind.Unsupported, nil},
		{"no port", "tcp", good, errkind.Malformed, nil},
		{"port 0", "tcp", good + ":0", errkind.Malformed, nil},
		{"mistyped address", "tcp", string(typo) + ":80", errkind.NotFound, descriptor.ErrHSChecksum},
		{"short address", "tcp", "short.obol:80", errkind.NotFound, descriptor.ErrHSAddress},
		{"no descriptor", "tcp", good + ":80", errkind.NotFound, hidden.ErrUnknownService},
	}
	for _, tt := range tests {
		_, err := c.Dial(ctx, tt.network, tt.address)
		if got := errkind.Of(err); got != tt.want || tt.cause != nil && !errors.Is(err, tt.cause) {
			t.Errorf("%s: %v (kind %v), want kind %v wrapping %v", tt.name, err, got, tt.want, tt.cause)
		}
	}
	if ctx.Err() != nil {
		t.Fatal("the context ended: the kinds above may be timeouts'")
	}

	route := hidden.Route(c, socks.DialerFunc(func(context.Context, socks.Request) (net.Conn, error) {
		t.Fatal("a .obol name reached the other dialer")
		return nil, nil
	}))
	_, err := route.DialStream(ctx, socks.Request{Target: socks.Target{Host: good, Port: 80}})
	if socks.ReplyCode5(err) != socks.Rep5HostUnreachable || socks.HTTPStatus(err) != 502 {
		t.Errorf("proxy reply to a missing descriptor: %#x/%d (%v)", socks.ReplyCode5(err), socks.HTTPStatus(err), err)
	}

	expired, cancelExpired := context.WithDeadline(ctx, time.Now().Add(-time.Second))
	defer cancelExpired()
	_, err = c.Dial(expired, "tcp", hidden.AddressOf(newKey(t))+":80")
	if errkind.Of(err) != errkind.Timeout || socks.ReplyCode5(err) != socks.Rep5TTLExpired {
		t.Errorf("passed deadline: %v (kind %v)", err, errkind.Of(err))
	}

	c.Close()
	_, err = c.Dial(ctx, "tcp", good+":80")
	if errkind.Of(err) != errkind.Closed {
		t.Errorf("closed client: %v (kind %v)", err, errkind.Of(err))
	}
}

// A client that knows too few relays for a path is told to try later.
func TestDialErrorKindNoRelays(t *testing.T) {
	lm := link.NewManager(newHost(t), link.Config{})
	lm.Start()
	t.Cleanup(func() { lm.Close() })
	c, err := hidden.NewConnector(hidden.Config{Links: lm, Directory: relaynet.NewDirectory()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err = c.Dial(ctx, "tcp", hidden.AddressOf(newKey(t))+":80")
	if errkind.Of(err) != errkind.Retry || !errors.Is(err, hidden.ErrNoRelays) {
		t.Errorf("no relays: %v (kind %v), want retry", err, errkind.Of(err))
	}
}

// Once a connection to a service is open, its reads and writes fail with
// kinds too: a deadline is a timeout, a connection closed here is closed,
// and one lost with its circuits (here every relay goes away) asks for
// another path, never a clean end of file.
func TestConnErrorKindsAfterOpen(t *testing.T) {
	tn := newTestNet(t, 5)
	key := newKey(t)
	l, _ := tn.listen(key)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	c, _ := tn.client()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	open := func() net.Conn {
		conn, err := c.Dial(ctx, "tcp", hidden.AddressOf(key)+":80")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Write([]byte("ping")); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(conn, make([]byte, 4)); err != nil {
			t.Fatal(err)
		}
		return conn
	}

	conn := open()
	conn.SetReadDeadline(time.Now().Add(-time.Second))
	if _, err := conn.Read(make([]byte, 1)); errkind.Of(err) != errkind.Timeout {
		t.Errorf("read past its deadline: kind %v (%v), want timeout", errkind.Of(err), err)
	}
	conn.Close()
	if _, err := conn.Write([]byte("x")); errkind.Of(err) != errkind.Closed {
		t.Errorf("write to a closed connection: kind %v (%v), want closed", errkind.Of(err), err)
	}

	conn = open()
	for _, r := range tn.relays {
		r.stop()
	}
	if _, err := conn.Read(make([]byte, 1)); errkind.Of(err) != errkind.OtherPath || errors.Is(err, io.EOF) {
		t.Errorf("read on lost circuits: kind %v (%v), want other path", errkind.Of(err), err)
	}
	if _, err := conn.Write([]byte("x")); errkind.Of(err) != errkind.OtherPath {
		t.Errorf("write on lost circuits: kind %v (%v), want other path", errkind.Of(err), err)
	}
}

// A service is unknown only if descriptor directories said so: when none
// can be reached, the failure asks for another path, not a check of the
// address.
func TestDialErrorKindNoDirectory(t *testing.T) {
	tn := newTestNet(t, 5)
	c, _ := tn.client()
	for _, r := range tn.relays {
		r.stop()
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := c.Dial(ctx, "tcp", hidden.AddressOf(newKey(t))+":80")
	if errkind.Of(err) != errkind.OtherPath || errors.Is(err, hidden.ErrUnknownService) {
		t.Errorf("no directory reachable: %v (kind %v), want other path", err, errkind.Of(err))
	}
	if ctx.Err() != nil {
		t.Fatal("the context ended: the kind above may be a timeout's")
	}
}
