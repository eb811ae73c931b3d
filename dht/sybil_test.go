package dht_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"math/bits"
	"testing"
	"time"

	kad "github.com/libp2p/go-libp2p-kad-dht"
	record "github.com/libp2p/go-libp2p-record"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/routing"

	"github.com/obolnet/obol/descriptor"
	"github.com/obolnet/obol/dht"
	"github.com/obolnet/obol/dht/dhttest"
)

// withholder stores nothing, so it never answers with a record.
type withholder struct{}

func (withholder) Validate(string, []byte) error        { return errors.New("withheld") }
func (withholder) Select(string, [][]byte) (int, error) { return 0, errors.New("withheld") }

// staleKeeper stores anything and, between two records, keeps the one
// with the lower sequence number: it serves stale descriptors.
type staleKeeper struct{}

func (staleKeeper) Validate(string, []byte) error { return nil }
func (staleKeeper) Select(_ string, vals [][]byte) (int, error) {
	best, bestSeq := 0, ^uint64(0)
	for i, v := range vals {
		if u, err := descriptor.Decode(v); err == nil {
			if r, err := u.Verify(time.Now()); err == nil && r.Seq < bestSeq {
				best, bestSeq = i, r.Seq
			}
		}
	}
	return best, nil
}

// commonPrefix is the number of leading bits a and b share.
func commonPrefix(a, b []byte) int {
	for i := range a {
		if x := a[i] ^ b[i]; x != 0 {
			return i*8 + bits.LeadingZeros8(x)
		}
	}
	return len(a) * 8
}

// grindNear returns an Ed25519 key whose peer ID sits close, in the
// Kademlia key space, to the DHT key of target's descriptor.
func grindNear(target peer.ID, tries int) crypto.PrivKey {
	goal := sha256.Sum256([]byte(dht.RelayKey(target)))
	var best crypto.PrivKey
	bestBits := -1
	for range tries {
		k, _, _ := crypto.GenerateEd25519Key(rand.Reader)
		id, _ := peer.IDFromPrivateKey(k)
		pos := sha256.Sum256([]byte(id))
		if b := commonPrefix(pos[:], goal[:]); b > bestBits {
			best, bestBits = k, b
		}
	}
	return best
}

func startHostile(t *testing.T, key crypto.PrivKey, v record.Validator, boot []peer.AddrInfo) *kad.IpfsDHT {
	h, err := dht.NewHost(dht.HostConfig{Identity: key})
	if err != nil {
		t.Fatal(err)
	}
	k, err := kad.New(h, kad.Mode(kad.ModeServer), kad.ProtocolPrefix(dht.ProtocolPrefix),
		kad.Validator(v), kad.DisableProviders(), kad.BootstrapPeers(boot...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { k.Close(); h.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, ai := range boot {
		h.Connect(ctx, ai)
	}
	k.Bootstrap(ctx)
	return k
}

// With 8 hostile DHT servers among 38 (21%), placed next to the records of
// 8 victims, half withholding and half serving stale or forged records, a
// client still finds at least 95% of the honest relays by sampling and
// never accepts a forged or stale descriptor.
func TestSybilMinority(t *testing.T) {
	if testing.Short() {
		t.Skip("network test")
	}
	net := dhttest.NewCluster(t, 30, dhttest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	victims := net.Relays[1:9]

	// Genuine but older records of the victims (signed with their keys,
	// a lower sequence number), to be served as stale ones.
	observer := dhttest.NewClient(t, net.Bootstrap())
	stale := map[peer.ID][]byte{}
	staleSeq := map[peer.ID]uint64{}
	for _, v := range victims {
		d, _, err := observer.LookupRelay(ctx, v.ID())
		if err != nil {
			t.Fatal(err)
		}
		staleSeq[v.ID()] = d.Seq - 1
		rec, err := dhttest.Signer(v.Key, v.Host, d.Roles, time.Hour)(d.Seq-1, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		stale[v.ID()] = rec
	}

	attacker, _, _ := crypto.GenerateEd25519Key(rand.Reader)
	attackerID, _ := peer.IDFromPrivateKey(attacker)
	var keepers []*kad.IpfsDHT
	for i, v := range victims {
		key := grindNear(v.ID(), 3000)
		if i%2 == 0 {
			startHostile(t, key, withholder{}, net.Bootstrap())
			continue
		}
		k := startHostile(t, key, staleKeeper{}, net.Bootstrap())
		keepers = append(keepers, k)
		// Plant the stale record, and try a forged one too (the stale
		// keeper keeps whichever has the lower sequence).
		pctx, pcancel := context.WithTimeout(ctx, 20*time.Second)
		k.PutValue(pctx, dht.RelayKey(v.ID()), stale[v.ID()])
		forged := relayRecordFor(t, attacker, attackerID, 0)
		k.PutValue(pctx, dht.RelayKey(v.ID()), forged)
		pcancel()
	}

	client := dhttest.NewClient(t, net.Bootstrap())
	honest := map[peer.ID]bool{}
	for _, r := range net.Relays {
		honest[r.ID()] = true
	}
	cache := dht.NewCache("", nil)
	for i := 0; i < 30 && len(cache.Relays()) < len(honest); i++ {
		got, _ := client.Sample(ctx, 10, cache, nil)
		for _, d := range got {
			if !honest[d.PeerID] {
				t.Fatalf("sampling returned a relay that never published: %s", d.PeerID)
			}
		}
	}
	if found := len(cache.Relays()); found*100 < 95*len(honest) {
		t.Fatalf("sampling found %d of %d honest relays", found, len(honest))
	}
	for _, v := range victims {
		d, _, err := client.LookupRelay(ctx, v.ID())
		if err != nil {
			t.Fatalf("victim %s not found: %v", v.ID(), err)
		}
		if d.Seq <= staleSeq[v.ID()] || d.PeerID != v.ID() {
			t.Fatalf("victim %s: got seq %d (stale was %d)", v.ID(), d.Seq, staleSeq[v.ID()])
		}
	}
	// The attack was live: the stale keepers still serve stale records.
	for i, k := range keepers {
		v := victims[2*i+1]
		got, err := k.GetValue(ctx, dht.RelayKey(v.ID()), routing.Offline)
		if err != nil || !bytes.Equal(got, stale[v.ID()]) {
			t.Fatalf("stale keeper %d does not hold the stale record (%v)", i, err)
		}
	}
	t.Logf("sampling found %d of %d honest relays; every victim's current record found", len(cache.Relays()), len(honest))
}

// relayRecordFor signs a minimal descriptor of id with a huge sequence.
func relayRecordFor(t *testing.T, key crypto.PrivKey, id peer.ID, _ int) []byte {
	now := time.Now()
	b, err := descriptor.Sign(key, &descriptor.Relay{
		Version: descriptor.Version, PeerID: id, Seq: 1 << 62,
		Published: now.Unix(), Expires: now.Add(time.Hour).Unix(),
		Addrs:     [][]byte{{0x04, 127, 0, 0, 1, 0x06, 0x0f, 0xa1}},
		OnionKeys: []descriptor.OnionKey{{Key: [32]byte{7}, NotAfter: now.Add(2 * time.Hour).Unix()}},
		Roles:     descriptor.RoleRelay, Bandwidth: 1, Protocols: []uint16{1},
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}
