package dht

import (
	"context"
	"crypto/rand"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	manet "github.com/multiformats/go-multiaddr/net"
)

// A host that listens on a loopback address of its own dials from it,
// over QUIC as over TCP: the peer it connects to sees that address, not
// 127.0.0.1 — the route's source, which libp2p picks by itself for QUIC
// — so that on a local network every node is told apart by its address,
// as on a real one.
func TestDialsLeaveFromTheListenAddress(t *testing.T) {
	for _, tr := range []string{"udp/0/quic-v1", "tcp/0"} {
		t.Run(tr, func(t *testing.T) {
			open := func(ip string) host.Host {
				k, _, _ := crypto.GenerateEd25519Key(rand.Reader)
				h, err := NewHost(HostConfig{Identity: k, Listen: []string{"/ip4/" + ip + "/" + tr}})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { h.Close() })
				return h
			}
			a, b := open("127.0.0.61"), open("127.0.0.62")
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := a.Connect(ctx, peer.AddrInfo{ID: b.ID(), Addrs: b.Addrs()}); err != nil {
				t.Fatal(err)
			}
			conns := b.Network().ConnsToPeer(a.ID())
			if len(conns) == 0 {
				t.Fatal("b has no connection from a")
			}
			for _, c := range conns {
				if ip, err := manet.ToIP(c.RemoteMultiaddr()); err != nil || ip.String() != "127.0.0.61" {
					t.Fatalf("b sees a at %s (%v), want 127.0.0.61", c.RemoteMultiaddr(), err)
				}
			}
		})
	}
}
