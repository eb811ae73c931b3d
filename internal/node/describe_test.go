package node

import (
	"errors"
	"testing"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/obolnet/obol/descriptor"
	"github.com/obolnet/obol/dht"
)

// TestDescriptorVerifies signs a relay's descriptor and checks that it
// verifies and carries the configuration, the onion key and the addresses.
func TestDescriptorVerifies(t *testing.T) {
	for _, roles := range []descriptor.Role{descriptor.RoleRelay, descriptor.RoleRelay | descriptor.RoleGuard | descriptor.RoleExit} {
		r := openTestRelay(t, RelayConfig{Roles: roles, Bandwidth: 12345, Lifetime: 2 * time.Hour, Republish: time.Hour})
		now := time.Now()
		rec, err := r.describer.sign(42, now)
		if err != nil {
			t.Fatal(err)
		}
		u, err := descriptor.Decode(rec)
		if err != nil {
			t.Fatal(err)
		}
		got, err := u.Verify(now)
		if err != nil {
			t.Fatalf("roles %v: %v", roles, err)
		}
		switch {
		case got.PeerID != r.ID() || got.Seq != 42 || got.Roles != roles || got.Bandwidth != 12345:
			t.Errorf("descriptor %+v", got)
		case got.Expires-got.Published != int64((2 * time.Hour).Seconds()):
			t.Errorf("lifetime %ds", got.Expires-got.Published)
		case func() bool { k, ok := got.OnionKeyAt(now); return !ok || k.Key != r.keys.CircuitKeys(now)[0].Public }():
			t.Error("the key to use now is not the one the relay answers")
		case len(got.Addrs) != len(r.host.Addrs()):
			t.Errorf("%d addresses, host has %d", len(got.Addrs), len(r.host.Addrs()))
		case roles.Has(descriptor.RoleExit) != got.AcceptsPort(443):
			t.Errorf("exit summary %v for roles %v", got.ExitPorts, roles)
		}
	}
}

// TestAdvertised checks the order and the cap of advertised addresses.
func TestAdvertised(t *testing.T) {
	var in []ma.Multiaddr
	for _, s := range []string{
		"/ip4/127.0.0.1/tcp/1", "/ip4/10.0.0.1/tcp/1", "/ip4/9.9.9.9/tcp/1", "/ip6/::1/tcp/1",
		"/ip4/192.168.1.1/tcp/1", "/ip4/8.8.4.4/udp/1/quic-v1", "/ip4/10.0.0.2/tcp/1",
		"/ip4/10.0.0.3/tcp/1", "/ip4/10.0.0.4/tcp/1", "/ip4/10.0.0.5/tcp/1",
	} {
		in = append(in, ma.StringCast(s))
	}
	out := advertised(in)
	if len(out) != descriptor.MaxAddrs {
		t.Fatalf("%d addresses, want %d", len(out), descriptor.MaxAddrs)
	}
	want := []string{"/ip4/9.9.9.9/tcp/1", "/ip4/8.8.4.4/udp/1/quic-v1", "/ip4/10.0.0.1/tcp/1"}
	for i, w := range want {
		a, err := ma.NewMultiaddrBytes(out[i])
		if err != nil || a.String() != w {
			t.Errorf("address %d = %v, want %s", i, a, w)
		}
	}
	for _, b := range out {
		if a, _ := ma.NewMultiaddrBytes(b); a.String() == "/ip4/127.0.0.1/tcp/1" || a.String() == "/ip6/::1/tcp/1" {
			t.Errorf("loopback %v kept while non-loopback addresses were dropped", a)
		}
	}
}

// TestRelayConfigValidate checks the limits on a relay's timing.
func TestRelayConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  RelayConfig
		ok   bool
	}{
		{"defaults", RelayConfig{DataDir: "d"}, true},
		{"no data dir", RelayConfig{}, false},
		{"lifetime too long", RelayConfig{DataDir: "d", Lifetime: MaxLifetime + time.Hour}, false},
		{"rotation too short for the lifetime", RelayConfig{DataDir: "d", OnionRotation: 4 * time.Hour}, false},
		{"rotation a sixth of the lifetime", RelayConfig{DataDir: "d", Lifetime: 24 * time.Hour, OnionRotation: 4 * time.Hour}, true},
		{"lifetime too short", RelayConfig{DataDir: "d", Lifetime: time.Second, Republish: time.Second}, false},
		{"republish over half", RelayConfig{DataDir: "d", Lifetime: time.Hour, Republish: 31 * time.Minute}, false},
		{"republish half", RelayConfig{DataDir: "d", Lifetime: time.Hour, Republish: 30 * time.Minute}, true},
		{"unknown role", RelayConfig{DataDir: "d", Roles: 1 << 9}, false},
	}
	for _, tt := range tests {
		if err := tt.cfg.Validate(); (err == nil) != tt.ok {
			t.Errorf("%s: Validate() = %v, want ok=%v", tt.name, err, tt.ok)
		}
	}
}

// TestAnnounce checks that announced addresses replace the listen
// addresses in the descriptor and in what the relay prints.
func TestAnnounce(t *testing.T) {
	ann := []string{"/ip4/8.8.8.8/udp/7400/quic-v1", "/dns4/relay.example/tcp/7400"}
	r := openTestRelay(t, RelayConfig{Announce: ann})
	now := time.Now()
	rec, err := r.describer.sign(1, now)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := descriptor.Decode(rec)
	got, err := u.Verify(now)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Addrs) != 2 {
		t.Fatalf("descriptor has %d addresses, want the 2 announced", len(got.Addrs))
	}
	for i, a := range r.Addrs() {
		if want := ann[i] + "/p2p/" + r.ID().String(); a.String() != want {
			t.Errorf("address %d = %s, want %s", i, a, want)
		}
	}
	if err := (&RelayConfig{DataDir: "d", Announce: []string{"nonsense"}}).Validate(); err == nil {
		t.Error("a bad announce address was accepted")
	}
}

// TestUncheckedRelayDoesNotSign: a relay off loopback signs no
// descriptor until peers have confirmed one of its addresses, unless it
// skips the check; a relay on loopback alone needs no check.
func TestUncheckedRelayDoesNotSign(t *testing.T) {
	for _, tc := range []struct {
		name   string
		listen string
		skip   bool
		want   error
	}{
		{"off loopback", "/ip4/0.0.0.0/udp/0/quic-v1", false, dht.ErrUnreachable},
		{"off loopback, check skipped", "/ip4/0.0.0.0/udp/0/quic-v1", true, nil},
		{"loopback", "/ip4/127.0.0.1/udp/0/quic-v1", false, nil},
	} {
		r := openTestRelay(t, RelayConfig{Listen: []string{tc.listen}, SkipReachCheck: tc.skip})
		_, err := r.describer.sign(1, time.Now())
		if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
			t.Errorf("%s: sign: %v, want %v", tc.name, err, tc.want)
		}
		if (r.reach != nil) != (tc.listen != "/ip4/127.0.0.1/udp/0/quic-v1") {
			t.Errorf("%s: reachability service running: %v", tc.name, r.reach != nil)
		}
	}
}
