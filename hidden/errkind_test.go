package hidden_test

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/obolnet/obol/circuit/errkind"
	"github.com/obolnet/obol/circuit/link"
	"github.com/obolnet/obol/circuit/socks"
	"github.com/obolnet/obol/descriptor"
	"github.com/obolnet/obol/hidden"
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
	c, err := hidden.NewClient(hidden.Network{Links: lm, Directory: &directory{}})
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
