package dht

import (
	"crypto/rand"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
)

// A relay's host admits thousands of connections; a client's keeps
// libp2p's machine-scaled limits.
func TestRelayResourceLimits(t *testing.T) {
	inbound := func(maxConns int) int {
		k, _, _ := crypto.GenerateEd25519Key(rand.Reader)
		h, err := NewHost(HostConfig{Identity: k, MaxConns: maxConns})
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close()
		var n int
		h.Network().ResourceManager().ViewSystem(func(s network.ResourceScope) error {
			n = s.(rcmgr.ResourceScopeLimiter).Limit().GetConnLimit(network.DirInbound)
			return nil
		})
		return n
	}
	if got := inbound(8192); got != 4096 {
		t.Fatalf("relay: %d inbound connections allowed, want 4096", got)
	}
	if got := inbound(0); got >= 4096 || got <= 0 {
		t.Fatalf("client: %d inbound connections allowed", got)
	}
}
