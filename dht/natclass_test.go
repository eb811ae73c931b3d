package dht

import (
	"strings"
	"testing"

	ma "github.com/multiformats/go-multiaddr"
)

// The classifier over synthetic identify observations: observer
// addresses (where the peer is) and observed addresses (where it sees
// the relay's UDP socket).
func TestNATClassifier(t *testing.T) {
	type obs struct{ from, at string }
	quic := func(hostport string) string {
		ip, port, _ := strings.Cut(hostport, ":")
		return "/ip4/" + ip + "/udp/" + port + "/quic-v1"
	}
	cases := []struct {
		name string
		obs  []obs
		want NATType
	}{
		{"none yet", nil, NATUnknown},
		{"two observers", []obs{{"1.0.0.1:1", "9.9.9.9:4000"}, {"1.0.0.2:1", "9.9.9.9:4000"}}, NATUnknown},
		{"cone", []obs{{"1.0.0.1:1", "9.9.9.9:4000"}, {"1.0.0.2:1", "9.9.9.9:4000"}, {"1.0.0.3:7", "9.9.9.9:4000"}}, NATCone},
		{"symmetric ports", []obs{{"1.0.0.1:1", "9.9.9.9:4000"}, {"1.0.0.2:1", "9.9.9.9:4001"}, {"1.0.0.3:7", "9.9.9.9:4002"}}, NATSymmetric},
		{"one port differs", []obs{{"1.0.0.1:1", "9.9.9.9:4000"}, {"1.0.0.2:1", "9.9.9.9:4000"}, {"1.0.0.3:7", "9.9.9.9:5123"}}, NATSymmetric},
		{"external IP differs", []obs{{"1.0.0.1:1", "9.9.9.9:4000"}, {"1.0.0.2:1", "9.9.9.8:4000"}, {"1.0.0.3:7", "9.9.9.9:4000"}}, NATSymmetric},
		// Three peers behind one address are one observer: no verdict,
		// however many ports they report.
		{"one observer IP", []obs{{"1.0.0.1:1", "9.9.9.9:4000"}, {"1.0.0.1:2", "9.9.9.9:4001"}, {"1.0.0.1:3", "9.9.9.9:4002"}}, NATUnknown},
		// An observer's latest report replaces its earlier one.
		{"observer corrects itself", []obs{{"1.0.0.1:1", "9.9.9.9:4001"}, {"1.0.0.1:1", "9.9.9.9:4000"}, {"1.0.0.2:1", "9.9.9.9:4000"}, {"1.0.0.3:7", "9.9.9.9:4000"}}, NATCone},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cl := newNATClassifier(DefaultNATObservers)
			for _, o := range c.obs {
				cl.add(ma.StringCast(quic(o.from)), ma.StringCast(quic(o.at)))
			}
			if got := cl.verdict(); got != c.want {
				t.Errorf("verdict %v, want %v", got, c.want)
			}
		})
	}
}

// Observations that are not of a direct UDP socket are ignored: TCP
// (another socket, another mapping), relayed connections, garbage.
func TestNATClassifierIgnoresOtherSockets(t *testing.T) {
	cl := newNATClassifier(DefaultNATObservers)
	q := ma.StringCast("/ip4/9.9.9.9/udp/4000/quic-v1")
	cl.add(ma.StringCast("/ip4/1.0.0.1/udp/1/quic-v1"), q)
	cl.add(ma.StringCast("/ip4/1.0.0.2/udp/1/quic-v1"), q)
	for _, o := range []struct{ from, at ma.Multiaddr }{
		{ma.StringCast("/ip4/1.0.0.3/tcp/1"), ma.StringCast("/ip4/9.9.9.9/tcp/5555")},
		{ma.StringCast("/ip4/1.0.0.4/udp/1/quic-v1"), ma.StringCast("/ip4/9.9.9.9/tcp/5555")},
		{ma.StringCast("/ip4/1.0.0.5/udp/1/quic-v1/p2p/12D3KooWJWoaqZhDaoEFshF7Rh1bpY9ohihFhzcW6d69Lr2NASuq/p2p-circuit"), q},
		{ma.StringCast("/ip4/1.0.0.6/udp/1/quic-v1"), nil},
		{ma.StringCast("/dns4/example.com/udp/1/quic-v1"), ma.StringCast("/ip4/9.9.9.9/udp/4001/quic-v1")},
	} {
		cl.add(o.from, o.at)
	}
	if got := cl.verdict(); got != NATUnknown {
		t.Fatalf("verdict %v from two UDP observers and four ignored ones, want unknown", got)
	}
	cl.add(ma.StringCast("/ip6/2001:db8::1/udp/9/quic-v1"), ma.StringCast("/ip4/9.9.9.9/udp/4001/quic-v1"))
	if got := cl.verdict(); got != NATSymmetric {
		t.Fatalf("verdict %v after a third observer saw another port, want symmetric", got)
	}
}
