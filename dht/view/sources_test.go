package view

import (
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

func info(tb testing.TB, seed byte, addr string) peer.AddrInfo {
	r := newTestRelay(tb, seed, "10.0.0.1")
	ai := peer.AddrInfo{ID: r.id}
	if addr != "" {
		ai.Addrs = []ma.Multiaddr{ma.StringCast(addr)}
	}
	return ai
}

// Sources come from different /16s (IPv4) and /32s (IPv6), loopback
// excepted; relays without an address are never picked.
func TestPickSources(t *testing.T) {
	cands := []peer.AddrInfo{
		info(t, 1, "/ip4/10.1.0.1/udp/1/quic-v1"),
		info(t, 2, "/ip4/10.1.200.1/udp/1/quic-v1"), // same /16 as 1
		info(t, 3, "/ip6/2001:db8::1/udp/1/quic-v1"),
		info(t, 4, "/ip6/2001:db8:ffff::1/udp/1/quic-v1"), // same /32 as 3
		info(t, 5, ""),
	}
	for range 50 {
		got := pickSources(cands, 5, "", false, 0)
		if len(got) != 2 {
			t.Fatalf("picked %d sources, want one per network (2)", len(got))
		}
		if netGroup(got[0].Addrs) == netGroup(got[1].Addrs) {
			t.Fatal("two sources in one network")
		}
	}
	if got := pickSources(cands, 5, "", true, 0); len(got) != 4 {
		t.Fatalf("with the rule lifted: %d sources, want 4", len(got))
	}
	loop := []peer.AddrInfo{
		info(t, 6, "/ip4/127.0.0.1/udp/1/quic-v1"),
		info(t, 7, "/ip4/127.0.0.1/udp/2/quic-v1"),
		info(t, 8, "/ip4/127.0.0.1/udp/3/quic-v1"),
	}
	if got := pickSources(loop, 3, "", false, 0); len(got) != 3 {
		t.Fatalf("loopback: %d sources, want 3", len(got))
	}
	// Kept sources come first, and the node itself is never a source.
	got := pickSources(append([]peer.AddrInfo{cands[2]}, cands...), 2, cands[0].ID, false, 1)
	if len(got) != 2 || got[0].ID != cands[2].ID || got[1].ID == cands[0].ID {
		t.Fatalf("kept source not first, or self picked: %v", got)
	}
}
