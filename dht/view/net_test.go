package view_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"slices"
	"testing"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/obolnet/obol/descriptor"
	"github.com/obolnet/obol/dht"
	"github.com/obolnet/obol/dht/dhttest"
	"github.com/obolnet/obol/dht/view"
)

// waitFor polls cond until it holds or ctx ends; it reports what was
// last seen on failure.
func waitFor(tb testing.TB, ctx context.Context, what string, cond func() (bool, string)) {
	tb.Helper()
	for {
		ok, state := cond()
		if ok {
			return
		}
		select {
		case <-ctx.Done():
			tb.Fatalf("%s: %s", what, state)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// allViewsComplete waits until every relay's view holds every relay.
func allViewsComplete(tb testing.TB, ctx context.Context, net *dhttest.Cluster) {
	tb.Helper()
	waitFor(tb, ctx, "relay views incomplete", func() (bool, string) {
		for i, r := range net.Relays {
			if n := len(r.View.Relays()); n < len(net.Relays) {
				return false, fmt.Sprintf("relay %d holds %d of %d", i, n, len(net.Relays))
			}
		}
		return true, ""
	})
}

func newHost(tb testing.TB) host.Host {
	tb.Helper()
	k, _, _ := crypto.GenerateEd25519Key(rand.Reader)
	h, err := dht.NewHost(dht.HostConfig{Identity: k})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { h.Close() })
	return h
}

func ids(rs []*descriptor.Relay) map[peer.ID]uint64 {
	m := map[peer.ID]uint64{}
	for _, r := range rs {
		m[r.PeerID] = r.Seq
	}
	return m
}

func relayAddrs(net *dhttest.Cluster) []peer.AddrInfo {
	var out []peer.AddrInfo
	for _, r := range net.Relays {
		out = append(out, dhttest.AddrInfo(r.Host))
	}
	return out
}

// Every relay's view becomes complete through gossip and sync; a client
// that takes the union of three relays' views holds every relay, and two
// clients hold the same set.
func TestViewComplete(t *testing.T) {
	net := dhttest.NewCluster(t, 12, dhttest.Options{Gossip: true})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	allViewsComplete(t, ctx, net)
	var views []map[peer.ID]uint64
	for range 2 {
		store := view.NewSet(nil)
		s := view.NewSyncer(newHost(t), store, view.SyncConfig{AllowSameSubnet: true})
		rd, err := s.Sync(ctx, relayAddrs(net))
		if err != nil {
			t.Fatal(err)
		}
		if rd.Sources != view.DefaultSources || len(rd.Bad) != 0 || rd.Rejected != 0 {
			t.Fatalf("round %+v", rd)
		}
		got := ids(store.Relays())
		for _, r := range net.Relays {
			if _, ok := got[r.ID()]; !ok {
				t.Fatalf("client view lacks relay %s", r.ID())
			}
		}
		views = append(views, got)
	}
	if len(views[0]) != len(views[1]) {
		t.Fatalf("two clients' views differ: %d and %d relays", len(views[0]), len(views[1]))
	}
	// A second round asks only for what changed: nothing has.
	s := view.NewSyncer(newHost(t), view.NewSet(nil), view.SyncConfig{AllowSameSubnet: true, Sources: 1})
	cands := relayAddrs(net)[:1]
	if _, err := s.Sync(ctx, cands); err != nil {
		t.Fatal(err)
	}
	if rd, err := s.Sync(ctx, cands); err != nil || rd.Listed != 0 || rd.Fetched != 0 {
		t.Fatalf("second round from one source: %+v %v, want nothing listed", rd, err)
	}

	// A client takes its first view from the bootstrap relays and keeps
	// them while they answer — until it has guards: then they are its
	// sources, and the bootstrap relays are asked no more, nor kept
	// connected.
	var guards []peer.AddrInfo
	h := newHost(t)
	s = view.NewSyncer(h, view.NewSet(nil), view.SyncConfig{AllowSameSubnet: true,
		Preferred: func() []peer.AddrInfo { return guards }, CloseDropped: true})
	all := relayAddrs(net)
	boot, want := all[:3], all[5:8]
	for range 2 {
		if _, err := s.Sync(ctx, boot); err != nil {
			t.Fatal(err)
		}
		if got := s.Sources(); !sameIDs(got, boot) {
			t.Fatalf("sources %v, want the bootstrap relays", got)
		}
	}
	guards = want
	if _, err := s.Sync(ctx, boot); err != nil {
		t.Fatal(err)
	}
	if got := s.Sources(); !sameIDs(got, want) {
		t.Fatalf("sources %v once the client has guards, want its guards", got)
	}
	for _, b := range boot {
		if c := h.Network().Connectedness(b.ID); c == network.Connected {
			t.Errorf("still connected to bootstrap relay %s, no longer a source", b.ID)
		}
	}
	for _, g := range want {
		if c := h.Network().Connectedness(g.ID); c != network.Connected {
			t.Errorf("guard %s, a source, is %v", g.ID, c)
		}
	}
}

// sameIDs says whether got names exactly the peers of want.
func sameIDs(got []peer.ID, want []peer.AddrInfo) bool {
	if len(got) != len(want) {
		return false
	}
	for _, a := range want {
		if !slices.Contains(got, a.ID) {
			return false
		}
	}
	return true
}

// A descriptor with new content, published by one relay, reaches every
// relay's view by gossip alone.
func TestViewNewDescriptorSpreads(t *testing.T) {
	net := dhttest.NewCluster(t, 10, dhttest.Options{Gossip: true})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	allViewsComplete(t, ctx, net)
	src := net.Relays[3]
	old, _ := src.View.Get(src.ID())
	src.Publisher.Changed()
	waitFor(t, ctx, "new descriptor did not spread", func() (bool, string) {
		for i, r := range net.Relays {
			if d, ok := r.View.Get(src.ID()); !ok || d.Seq <= old.Seq {
				return false, fmt.Sprintf("relay %d holds an old one", i)
			}
		}
		return true, ""
	})
}

// forger is a relay that serves a view it tampered with: its digest
// lists the relays of recs at a high sequence number, and it answers a
// fetch with tamper's version of each record.
func forger(tb testing.TB, recs map[peer.ID][]byte, tamper func(id peer.ID, rec []byte) []byte) host.Host {
	h := newHost(tb)
	h.SetStreamHandler(view.Protocol, func(st network.Stream) {
		defer st.Close()
		b, _ := io.ReadAll(io.LimitReader(st, 1<<16))
		q, err := view.DecodeRequest(b)
		if err != nil {
			st.Reset()
			return
		}
		var out []byte
		if len(q.Fetch) == 0 {
			d := view.Digest{Epoch: 1, Next: 1}
			for id := range recs {
				d.Entries = append(d.Entries, view.DigestEntry{ID: view.Short(id), Seq: 1 << 62})
			}
			out, err = view.EncodeDigest(d)
		} else {
			var rs view.Records
			for _, sh := range q.Fetch {
				for id := range recs {
					if view.Short(id) == sh {
						rs = append(rs, tamper(id, recs[id]))
					}
				}
			}
			out, err = view.EncodeRecords(rs)
		}
		if err != nil {
			tb.Error(err)
		}
		st.Write(out)
	})
	return h
}

// A serving relay can withhold descriptors but not forge one: a client
// keeps nothing a forging source serves — altered, re-signed, expired,
// or not asked for — and marks the source bad, while the honest sources
// of the same round still give it the whole view.
func TestViewForgingSource(t *testing.T) {
	now := time.Now()
	net := dhttest.NewCluster(t, 6, dhttest.Options{Gossip: true})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	allViewsComplete(t, ctx, net)
	genuine := map[peer.ID][]byte{}
	for _, r := range net.Relays {
		rec, _ := net.Relays[0].View.Record(r.ID())
		genuine[r.ID()] = rec
	}
	attacker, _, _ := crypto.GenerateEd25519Key(rand.Reader)
	other := net.Relays[1].ID()
	tampers := map[string]func(id peer.ID, rec []byte) []byte{
		"signature flipped": func(_ peer.ID, rec []byte) []byte {
			c := bytes.Clone(rec)
			c[len(c)-1] ^= 1
			return c
		},
		"body altered": func(_ peer.ID, rec []byte) []byte {
			c := bytes.Clone(rec)
			i := bytes.Index(c, []byte("obol-test"))
			c[i] = 'O' // same length, still canonical CBOR
			return c
		},
		"signed by another key": func(id peer.ID, rec []byte) []byte {
			u, _ := descriptor.Decode(rec)
			r, _ := u.Verify(time.Now())
			r.Seq = 1 << 62
			r.PeerID, _ = peer.IDFromPrivateKey(attacker)
			out, _ := descriptor.Sign(attacker, r)
			return out
		},
		"expired": func(id peer.ID, _ []byte) []byte {
			for _, r := range net.Relays {
				if r.ID() == id {
					s := dhttest.Signer(r.Key, r.Host, descriptor.RoleRelay, time.Minute)
					out, _ := s(1<<62, now.Add(-2*time.Minute))
					return out
				}
			}
			return nil
		},
		"another relay's record": func(id peer.ID, _ []byte) []byte {
			return genuine[other]
		},
	}
	for name, tamper := range tampers {
		t.Run(name, func(t *testing.T) {
			recs := map[peer.ID][]byte{}
			for id, rec := range genuine {
				if id != other {
					recs[id] = rec
				}
			}
			f := forger(t, recs, tamper)
			store := view.NewSet(nil)
			s := view.NewSyncer(newHost(t), store, view.SyncConfig{AllowSameSubnet: true, Sources: 1})
			rd, _ := s.Sync(ctx, []peer.AddrInfo{dhttest.AddrInfo(f)})
			if store.Len() != 0 {
				t.Fatalf("kept %d records from a forging source", store.Len())
			}
			if rd.Rejected == 0 {
				t.Fatalf("round %+v: nothing rejected", rd)
			}
			if name != "expired" && (len(rd.Bad) != 1 || rd.Bad[0] != f.ID()) {
				t.Fatalf("round %+v: the forging source is not marked bad", rd)
			}
			// With honest sources beside it, the view is whole and genuine.
			s = view.NewSyncer(newHost(t), store, view.SyncConfig{AllowSameSubnet: true, Sources: 4})
			cands := append([]peer.AddrInfo{dhttest.AddrInfo(f)}, relayAddrs(net)[:3]...)
			if _, err := s.Sync(ctx, cands); err != nil {
				t.Fatal(err)
			}
			for id, rec := range genuine {
				got, ok := store.Record(id)
				if !ok {
					t.Fatalf("relay %s missing", id)
				}
				if u, _ := descriptor.Decode(got); u.ClaimedPeerID() != id || (!bytes.Equal(got, rec) && mustSeq(t, got) < mustSeq(t, rec)) {
					t.Fatalf("relay %s: not its genuine record", id)
				}
			}
		})
	}
}

func mustSeq(t *testing.T, rec []byte) uint64 {
	u, err := descriptor.Decode(rec)
	if err != nil {
		t.Fatal(err)
	}
	r, err := u.Verify(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return r.Seq
}

// A peer that publishes invalid records on the relay topic has them
// rejected by the relays it sends them to: none is kept or passed on.
func TestGossipRejectsInvalid(t *testing.T) {
	net := dhttest.NewCluster(t, 5, dhttest.Options{Gossip: true})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	allViewsComplete(t, ctx, net)
	h := newHost(t)
	ps, err := pubsub.NewGossipSub(ctx, h, pubsub.WithMessageSignaturePolicy(pubsub.StrictNoSign),
		pubsub.WithNoAuthor(), pubsub.WithMessageIdFn(func(m *pb.Message) string { return string(m.GetData()) }))
	if err != nil {
		t.Fatal(err)
	}
	topic, err := ps.Join(view.Topic)
	if err != nil {
		t.Fatal(err)
	}
	sub, _ := topic.Subscribe()
	defer sub.Cancel()
	for _, r := range net.Relays {
		if err := h.Connect(ctx, dhttest.AddrInfo(r.Host)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, ctx, "attacker never in the mesh", func() (bool, string) {
		return len(topic.ListPeers()) == len(net.Relays), fmt.Sprintf("%d peers", len(topic.ListPeers()))
	})
	// A relay that has not yet taken the attacker in drops what it sends
	// unread, so the attacker sends forgeries until one is judged; each
	// differs (a different byte flipped), so none is a duplicate.
	victim := net.Relays[2]
	rec, _ := victim.View.Record(victim.ID())
	var forged [][]byte
	waitFor(t, ctx, "invalid record not rejected", func() (bool, string) {
		var acc, rej, ign uint64
		for _, r := range net.Relays {
			a, x, i := r.Gossip.Counts()
			acc, rej, ign = acc+a, rej+x, ign+i
		}
		if rej > 0 {
			return true, ""
		}
		if len(forged) < len(rec) && len(forged)%10 == 0 {
			bad := bytes.Clone(rec)
			bad[len(bad)-1-len(forged)/10] ^= 1
			if err := topic.Publish(ctx, bad); err != nil {
				t.Fatal(err)
			}
			forged = append(forged, bad)
		} else {
			forged = append(forged, nil)
		}
		return false, fmt.Sprintf("no relay rejected any of %d forgeries (accepted %d, ignored %d)", (len(forged)+9)/10, acc, ign)
	})
	for i, r := range net.Relays {
		got, _ := r.View.Record(victim.ID())
		for _, bad := range forged {
			if bad != nil && bytes.Equal(got, bad) {
				t.Fatalf("relay %d keeps a forged record", i)
			}
		}
		if _, err := descriptor.Decode(got); err != nil {
			t.Fatalf("relay %d: %v", i, err)
		}
	}
}
