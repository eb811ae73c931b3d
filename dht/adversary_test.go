package dht_test

import (
	"context"
	"crypto/rand"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	kad "github.com/libp2p/go-libp2p-kad-dht"
	pb "github.com/libp2p/go-libp2p-kad-dht/pb"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/obolnet/obol/descriptor"
	"github.com/obolnet/obol/dht"
	"github.com/obolnet/obol/dht/dhttest"
)

// acceptAll is the validator of a malicious DHT node: it stores and serves
// anything.
type acceptAll struct{}

func (acceptAll) Validate(string, []byte) error        { return nil }
func (acceptAll) Select(string, [][]byte) (int, error) { return 0, nil }

// maliciousNode is a DHT server that speaks obol's DHT protocol but stores
// whatever it is given; gets counts the GET_VALUE requests it answered.
type maliciousNode struct {
	kad  *kad.IpfsDHT
	gets atomic.Int64
}

func newMaliciousNode(t *testing.T, boot []peer.AddrInfo) *maliciousNode {
	key, _, _ := crypto.GenerateEd25519Key(rand.Reader)
	h, err := dht.NewHost(dht.HostConfig{Identity: key})
	if err != nil {
		t.Fatal(err)
	}
	m := &maliciousNode{}
	m.kad, err = kad.New(h, kad.Mode(kad.ModeServer), kad.ProtocolPrefix(dht.ProtocolPrefix),
		kad.Validator(acceptAll{}), kad.DisableProviders(), kad.BootstrapPeers(boot...),
		kad.OnRequestHook(func(_ context.Context, _ network.Stream, req *pb.Message) {
			if req.GetType() == pb.Message_GET_VALUE {
				m.gets.Add(1)
			}
		}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.kad.Close(); h.Close() })
	for _, ai := range boot {
		if err := h.Connect(context.Background(), ai); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.kad.Bootstrap(context.Background()); err != nil {
		t.Fatal(err)
	}
	return m
}

// plant stores rec under key in the malicious node's own datastore (its
// honest neighbours refuse it).
func (m *maliciousNode) plant(t *testing.T, key string, rec []byte) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_ = m.kad.PutValue(ctx, key, rec) // stored locally; the put to others fails validation there
	if got, err := m.kad.GetValue(ctx, key, kad.Quorum(1)); err != nil || len(got) == 0 {
		t.Fatalf("malicious node does not hold the planted record: %v", err)
	}
}

func signRelay(t *testing.T, key crypto.PrivKey, id peer.ID, seq uint64, published, expires time.Time) []byte {
	r := &descriptor.Relay{
		Version: descriptor.Version, PeerID: id, Seq: seq,
		Published: published.Unix(), Expires: expires.Unix(),
		Addrs:     [][]byte{{0x04, 127, 0, 0, 1, 0x06, 0x0f, 0xa1}}, // /ip4/127.0.0.1/tcp/4001
		OnionKeys: []descriptor.OnionKey{{Key: [32]byte{7}, NotAfter: expires.Add(time.Hour).Unix()}},
		Roles:     descriptor.RoleRelay, Bandwidth: 1, Protocols: []uint16{1},
	}
	b, err := descriptor.Sign(key, r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Bad records served by a malicious DHT node are never returned to a
// caller: forged, bound to another key, expired, and stale ones.
func TestMaliciousNodeRecordsNeverReturned(t *testing.T) {
	if testing.Short() {
		t.Skip("network test")
	}
	net := dhttest.NewCluster(t, 5, dhttest.Options{})
	m := newMaliciousNode(t, net.Bootstrap())
	client := dhttest.NewClient(t, net.Bootstrap())
	ctx := ctxT(t, time.Minute)
	now := time.Now()
	attacker, _, _ := crypto.GenerateEd25519Key(rand.Reader)
	attackerID, _ := peer.IDFromPrivateKey(attacker)

	// A relay with no honest record: the attacker's record for it is forged.
	ghostKey, _, _ := crypto.GenerateEd25519Key(rand.Reader)
	ghost, _ := peer.IDFromPrivateKey(ghostKey)
	forged := signRelay(t, attacker, attackerID, 1<<62, now, now.Add(time.Hour))
	m.plant(t, dht.RelayKey(ghost), forged)
	if _, _, err := client.LookupRelay(ctx, ghost); !errors.Is(err, dht.ErrNotFound) {
		t.Fatalf("forged record for an absent relay: got %v, want ErrNotFound", err)
	}

	// Honest relays: the attacker serves an expired record with a huge
	// sequence number (genuinely signed, replayed late) for one, and a
	// stale (older, lower-sequence) record for another.
	expiredVictim, staleVictim := net.Relays[1], net.Relays[2]
	m.plant(t, dht.RelayKey(expiredVictim.ID()), signRelay(t, expiredVictim.Key, expiredVictim.ID(), 1<<62, now.Add(-2*time.Hour), now.Add(-time.Minute)))
	m.plant(t, dht.RelayKey(staleVictim.ID()), signRelay(t, staleVictim.Key, staleVictim.ID(), 1, now.Add(-time.Minute), now.Add(time.Hour)))

	before := m.gets.Load()
	for _, v := range []*dhttest.Member{expiredVictim, staleVictim} {
		d, _, err := client.LookupRelay(ctx, v.ID())
		if err != nil {
			t.Fatalf("lookup of %s: %v", v.ID(), err)
		}
		if d.Seq == 1 || d.Seq == 1<<62 {
			t.Fatalf("lookup of %s returned the planted record (seq %d)", v.ID(), d.Seq)
		}
	}
	if m.gets.Load() == before {
		t.Fatal("the malicious node was never asked, so the test proves nothing")
	}
}

// After 30% of relays stop, lookups of the live ones keep succeeding once
// the survivors have republished, and the stopped ones expire. The
// lifetime leaves room for republishes that wait out dial timeouts toward
// the stopped relays (5–15 s under the race detector on two cores).
func TestChurn(t *testing.T) {
	if testing.Short() {
		t.Skip("network test")
	}
	const lifetime = 20 * time.Second
	start := time.Now()
	net := dhttest.NewCluster(t, 30, dhttest.Options{Lifetime: lifetime, Interval: 3 * time.Second})
	client := dhttest.NewClient(t, net.Bootstrap())
	t.Logf("network of 30 relays and a client up in %v", time.Since(start).Round(time.Millisecond))
	stopped := net.Relays[21:] // 9 of 30; relay 0, the bootstrap, survives
	live := net.Relays[:21]
	for _, r := range stopped {
		r.Stop()
	}
	// Every record the stopped relays published has expired by then
	// (descriptor times have one-second resolution); the live relays are
	// looked up meanwhile.
	expired := time.Now().Add(lifetime + 2*time.Second)

	ctx := ctxT(t, 3*time.Minute)
	var ok, failed atomic.Int64
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i := range 200 {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			lctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			defer cancel()
			r := live[i%len(live)]
			if d, _, err := client.LookupRelay(lctx, r.ID()); err == nil && d.PeerID == r.ID() {
				ok.Add(1)
			} else {
				failed.Add(1)
				t.Logf("lookup %d of %s failed: %v", i, r.ID(), err)
			}
		}()
	}
	wg.Wait()
	t.Logf("200 lookups of live relays in %v", time.Since(expired.Add(-lifetime-2*time.Second)).Round(time.Millisecond))
	if ok.Load() < 198 {
		t.Fatalf("%d of 200 lookups of live relays succeeded, want ≥ 198", ok.Load())
	}
	time.Sleep(time.Until(expired))
	// A relay that is gone costs a lookup its whole budget of walks:
	// look the stopped ones up at once.
	errs := make([]error, len(stopped))
	for i, r := range stopped {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			defer cancel()
			_, _, errs[i] = client.LookupRelay(lctx, r.ID())
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if !errors.Is(err, dht.ErrNotFound) {
			t.Errorf("stopped relay %s: got %v, want ErrNotFound", stopped[i].ID(), err)
		}
	}
}
