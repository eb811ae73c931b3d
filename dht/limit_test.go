package dht_test

import (
	"context"
	"crypto/rand"
	"testing"
	"time"

	pb "github.com/libp2p/go-libp2p-kad-dht/pb"
	recpb "github.com/libp2p/go-libp2p-record/pb"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-msgio/pbio"

	"github.com/obolnet/obol/descriptor"
	"github.com/obolnet/obol/dht"
	"github.com/obolnet/obol/dht/dhttest"
)

// A peer that floods a relay with PUT_VALUE requests has all but its
// allowance dropped before validation, while an honest relay's records
// still reach the same server.
func TestPutFloodRateLimited(t *testing.T) {
	if testing.Short() {
		t.Skip("network test")
	}
	net := dhttest.NewCluster(t, 4, dhttest.Options{})
	target := net.Relays[0]

	key, _, _ := crypto.GenerateEd25519Key(rand.Reader)
	h, err := dht.NewHost(dht.HostConfig{Identity: key})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := h.Connect(ctx, dhttest.AddrInfo(target.Host)); err != nil {
		t.Fatal(err)
	}
	// Valid records of many relays, so each one costs the server a full
	// validation unless it is dropped first.
	const flood = 300
	var recs [][]byte
	var ids []peer.ID
	for range flood {
		k, _, _ := crypto.GenerateEd25519Key(rand.Reader)
		id, _ := peer.IDFromPrivateKey(k)
		d := &descriptor.Relay{
			Version: descriptor.Version, PeerID: id, Seq: 1,
			Published: time.Now().Unix(), Expires: time.Now().Add(time.Hour).Unix(),
			Addrs:     [][]byte{target.Host.Addrs()[0].Bytes()},
			OnionKeys: []descriptor.OnionKey{{Key: [32]byte{1}, NotAfter: time.Now().Add(2 * time.Hour).Unix()}},
			Roles:     descriptor.RoleRelay, Bandwidth: 1, Protocols: []uint16{1},
		}
		rec, err := descriptor.Sign(k, d)
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, rec)
		ids = append(ids, id)
	}
	before := target.Node.DroppedPuts()
	start := time.Now()
	proto := dht.ProtocolPrefix + "/kad/1.0.0"
	for i, rec := range recs {
		s, err := h.NewStream(ctx, target.ID(), protocol.ID(proto))
		if err != nil {
			t.Fatal(err)
		}
		msg := &pb.Message{Type: pb.Message_PUT_VALUE, Key: []byte(dht.RelayKey(ids[i])),
			Record: &recpb.Record{Key: []byte(dht.RelayKey(ids[i])), Value: rec}}
		pbio.NewDelimitedWriter(s).WriteMsg(msg)
		s.CloseWrite()
		s.Close()
	}
	elapsed := time.Since(start)
	dropped := target.Node.DroppedPuts() - before
	allowed := dht.DefaultPutBurst + int(elapsed.Seconds()*dht.DefaultPutRate) + 1
	// Streams are handled asynchronously; wait until the server saw them.
	deadline := time.Now().Add(20 * time.Second)
	for int(dropped) < flood-allowed && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		dropped = target.Node.DroppedPuts() - before
	}
	if int(dropped) < flood-allowed {
		t.Fatalf("%d of %d flooded puts dropped in %v; at most %d may pass", dropped, flood, elapsed, allowed)
	}
	t.Logf("%d of %d flooded puts dropped in %v", dropped, flood, elapsed)

	// Honest relays still publish, and every relay is still found.
	if err := net.Relays[1].Node.PutRelay(ctx, mustLookup(t, ctx, net.Relays[2].Node, net.Relays[1].ID())); err != nil {
		t.Fatalf("an honest put after the flood: %v", err)
	}
	client := dhttest.NewClient(t, net.Bootstrap())
	for _, r := range net.Relays {
		if _, _, err := client.LookupRelay(ctx, r.ID()); err != nil {
			t.Fatalf("lookup of %s during the flood: %v", r.ID(), err)
		}
	}
}

func mustLookup(t *testing.T, ctx context.Context, n *dht.Node, id peer.ID) []byte {
	_, rec, err := n.LookupRelay(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	return rec
}
