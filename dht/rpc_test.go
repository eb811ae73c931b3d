package dht

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	pb "github.com/libp2p/go-libp2p-kad-dht/pb"
	recpb "github.com/libp2p/go-libp2p-record/pb"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	"google.golang.org/protobuf/proto"
)

var rpcKey = []byte("/obol-relay/key")

func getValueReq() *pb.Message { return pb.NewMessage(pb.Message_GET_VALUE, rpcKey, 0) }

// rpcPeer is a closer-peer entry with a valid ID and n addresses.
func rpcPeer(t testing.TB, seed byte, n int) *pb.Message_Peer {
	t.Helper()
	id, err := peer.IDFromBytes(append([]byte{0x00, 0x24, 0x08, 0x01, 0x12, 0x20}, bytes.Repeat([]byte{seed}, 32)...))
	if err != nil {
		t.Fatal(err)
	}
	p := &pb.Message_Peer{Id: []byte(id)}
	for range n {
		p.Addrs = append(p.Addrs, ma.StringCast("/ip4/192.0.2.1/udp/4001/quic-v1").Bytes())
	}
	return p
}

func frame(t testing.TB, m *pb.Message) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := writeFrame(&b, m); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func rpcResponses(t testing.TB) map[string]*pb.Message {
	withRec := getValueReq()
	withRec.Record = &recpb.Record{Key: rpcKey, Value: []byte("descriptor")}
	withRec.CloserPeers = []*pb.Message_Peer{rpcPeer(t, 1, 2), rpcPeer(t, 2, 1)}
	many := getValueReq()
	for i := range maxCloserPeers + 5 {
		many.CloserPeers = append(many.CloserPeers, rpcPeer(t, byte(i), maxPeerAddrs+3))
	}
	badID := getValueReq()
	badID.CloserPeers = []*pb.Message_Peer{{Id: []byte("not a peer id")}, rpcPeer(t, 3, 1)}
	wrongType := pb.NewMessage(pb.Message_FIND_NODE, rpcKey, 0)
	wrongKey := pb.NewMessage(pb.Message_GET_VALUE, []byte("/obol-relay/other"), 0)
	recOther := getValueReq()
	recOther.Record = &recpb.Record{Key: []byte("/obol-relay/other"), Value: []byte("x")}
	return map[string]*pb.Message{"record": withRec, "many peers": many, "bad id": badID,
		"wrong type": wrongType, "wrong key": wrongKey, "record under another key": recOther,
		"empty": getValueReq()}
}

func TestDecodeResponse(t *testing.T) {
	ms := rpcResponses(t)
	cases := []struct {
		name   string
		frame  []byte
		err    error
		closer int
	}{
		{"record", frame(t, ms["record"]), nil, 2},
		{"many peers", frame(t, ms["many peers"]), nil, maxCloserPeers},
		{"bad id", frame(t, ms["bad id"]), nil, 1},
		{"empty", frame(t, ms["empty"]), nil, 0},
		{"wrong type", frame(t, ms["wrong type"]), ErrBadResponse, 0},
		{"wrong key", frame(t, ms["wrong key"]), ErrBadResponse, 0},
		{"record under another key", frame(t, ms["record under another key"]), ErrBadResponse, 0},
		{"too large", append(frameLen(maxResponseSize+1), make([]byte, 8)...), ErrResponseTooLarge, 0},
		{"truncated", frame(t, ms["record"])[:20], ErrBadResponse, 0},
		{"no length", nil, ErrBadResponse, 0},
		{"garbage", append(frameLen(3), 0xff, 0xff, 0xff), ErrBadResponse, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, err := readResponse(c.frame, getValueReq())
			if !errors.Is(err, c.err) {
				t.Fatalf("err %v, want %v", err, c.err)
			}
			if err != nil {
				return
			}
			if len(m.CloserPeers) != c.closer {
				t.Fatalf("%d closer peers, want %d", len(m.CloserPeers), c.closer)
			}
			for _, p := range m.CloserPeers {
				if len(p.Addrs) > maxPeerAddrs {
					t.Fatalf("%d addresses kept", len(p.Addrs))
				}
			}
		})
	}
}

func frameLen(n int) []byte {
	var b bytes.Buffer
	b.Write(binary.AppendUvarint(nil, uint64(n)))
	return b.Bytes()
}

// readResponse is what SendRequest does with the bytes of a stream.
func readResponse(b []byte, req *pb.Message) (*pb.Message, error) {
	f, err := readFrame(bufio.NewReader(bytes.NewReader(b)), maxResponseSize)
	if err != nil {
		return nil, err
	}
	return decodeResponse(f, req)
}

// FuzzDecodeResponse: any bytes either fail or decode to an answer of the
// request's type and key within the bounds, which encodes and decodes to
// itself.
func FuzzDecodeResponse(f *testing.F) {
	for _, m := range rpcResponses(f) {
		f.Add(frame(f, m))
	}
	f.Add(frameLen(maxResponseSize + 1))
	f.Fuzz(func(t *testing.T, b []byte) {
		req := getValueReq()
		m, err := readResponse(b, req)
		if err != nil {
			return
		}
		if m.GetType() != req.GetType() || !bytes.Equal(m.GetKey(), req.GetKey()) {
			t.Fatal("answer to another request accepted")
		}
		if r := m.GetRecord(); r != nil && !bytes.Equal(r.GetKey(), req.GetKey()) {
			t.Fatal("record under another key accepted")
		}
		if len(m.CloserPeers) > maxCloserPeers || len(m.ProviderPeers) != 0 {
			t.Fatalf("%d closer, %d provider peers", len(m.CloserPeers), len(m.ProviderPeers))
		}
		for _, p := range m.CloserPeers {
			if _, err := peer.IDFromBytes(p.Id); err != nil || len(p.Addrs) > maxPeerAddrs {
				t.Fatal("bad closer peer kept")
			}
		}
		again, err := readResponse(frame(t, m), req)
		if err != nil || !proto.Equal(m, again) {
			t.Fatalf("round trip: %v", err)
		}
	})
}
