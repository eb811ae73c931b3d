package obol_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/obolnet/obol"
	"github.com/obolnet/obol/hidden"
	"github.com/obolnet/obol/internal/localnet"
)

// dialKind dials address and returns the kind of the failure: Dial's, or
// the first read's, since Dial returns before the exit answers.
func dialKind(t *testing.T, ctx context.Context, c *obol.Client, network, address string) (obol.ErrorKind, error) {
	t.Helper()
	conn, err := c.Dial(ctx, network, address)
	if err == nil {
		conn.SetDeadline(time.Now().Add(2 * time.Minute)) // a safety net; the exit answers long before
		conn.Write([]byte("hello?"))
		_, err = conn.Read(make([]byte, 1))
		conn.Close()
	}
	if err == nil {
		t.Fatalf("dial %s %s: no failure", network, address)
	}
	return obol.KindOf(err), err
}

// Every failure an embedder's Dial meets tells it what to do, with the
// root package's names alone: the request's own faults, the exit's
// answers, hidden services that cannot be found, a client that has not
// joined in time or has stopped.
func TestDialErrorKinds(t *testing.T) {
	network, err := localnet.Start(context.Background(), localnet.Config{Relays: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(network.Close)
	c, err := obol.NewClient(obol.ClientConfig{Bootstrap: network.Bootstrap(), AllowSameSubnet: true})
	if err != nil {
		t.Fatal(err)
	}

	// Not joined yet (not even run) when the deadline passes.
	expired, cancelExpired := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancelExpired()
	if got, err := dialKind(t, expired, c, "tcp", "example.com:80"); got != obol.KindTimeout || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("before joining: kind %v (%v), want timeout", got, err)
	}

	runCtx, stop := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- c.Run(runCtx) }()
	t.Cleanup(func() { stop(); <-ran })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	unknown := hidden.AddressOf(key) // well formed, never published

	tests := []struct {
		name, network, address string
		want                   obol.ErrorKind
	}{
		{"no port", "tcp", "example.com", obol.KindMalformed},
		{"port 0", "tcp", "example.com:0", obol.KindMalformed},
		{"network not tcp", "udp", "example.com:80", obol.KindUnsupported},
		{"hidden service, network not tcp", "udp", unknown + ":80", obol.KindUnsupported},
		{"hidden service never published", "tcp", unknown + ":80", obol.KindNotFound},
		{"hidden service address mistyped", "tcp", "nosuchservice.obol:80", obol.KindNotFound},
		{"hidden service address, other spelling", "tcp", "www." + strings.ToUpper(unknown) + ".:80", obol.KindNotFound},
		{"connect refused (END connect-refused)", "tcp", "127.0.0.1:" + closedPort(t), obol.KindRefused},
		{"reserved address (END exit-policy)", "tcp", "10.1.2.3:80", obol.KindNotAllowed},
		{"name that cannot resolve (END resolve-failed)", "tcp", "a..b.example:80", obol.KindNotFound},
	}
	for _, tt := range tests {
		if got, err := dialKind(t, ctx, c, tt.network, tt.address); got != tt.want {
			t.Errorf("%s: kind %v (%v), want %v", tt.name, got, err, tt.want)
		}
	}
	if ctx.Err() != nil {
		t.Fatal("the context ended: the kinds above may be timeouts'")
	}

	stop()
	if err := <-ran; err != nil {
		t.Fatal(err)
	}
	ran <- nil // for the cleanup
	if got, err := dialKind(t, ctx, c, "tcp", "example.com:80"); got != obol.KindClosed || !errors.Is(err, obol.ErrClosed) {
		t.Errorf("after Run returned: kind %v (%v), want closed", got, err)
	}
}

// closedPort returns a loopback port nothing listens on.
func closedPort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	ln.Close()
	return port
}
