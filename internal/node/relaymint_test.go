package node

import (
	"slices"
	"testing"

	ma "github.com/multiformats/go-multiaddr"
)

// The mint circuits' host listens where the relay does, on ports of its
// own; addresses that name no IP and port are left out.
func TestEphemeral(t *testing.T) {
	var in []ma.Multiaddr
	for _, s := range []string{"/ip4/127.0.0.9/udp/7400/quic-v1", "/ip4/127.0.0.9/tcp/7400", "/ip6/::1/tcp/7401",
		"/ip4/127.0.0.9/udp/7402/quic-v1", "/dns4/relay.example/tcp/7400"} {
		in = append(in, ma.StringCast(s))
	}
	want := []string{"/ip4/127.0.0.9/udp/0/quic-v1", "/ip4/127.0.0.9/tcp/0", "/ip6/::1/tcp/0"}
	if got := ephemeral(in); !slices.Equal(got, want) {
		t.Fatalf("ephemeral = %v, want %v", got, want)
	}
}
