package dht

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	pb "github.com/libp2p/go-libp2p-kad-dht/pb"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"google.golang.org/protobuf/proto"
)

// kadProtocol is the stream protocol of obol's DHT: kad-dht's /kad/1.0.0
// under ProtocolPrefix.
const kadProtocol = protocol.ID(ProtocolPrefix + "/kad/1.0.0")

// Bounds on one answer to a request. A GET_VALUE answer carries at most one
// record (≤ descriptor.MaxSize) and the k closest peers the server knows,
// each with a few addresses; anything past these bounds is a peer trying to
// make us buffer, dial or sort more than an honest one would.
const (
	maxResponseSize = 64 << 10
	maxCloserPeers  = 40 // 2k: kad-dht caps closer peers the same way
	maxPeerAddrs    = 16
	rpcTimeout      = 5 * time.Second
)

// Errors of the response decoder. A peer answering with one of them is
// treated as unreachable for the rest of the lookup.
var (
	ErrResponseTooLarge = errors.New("dht: response too large")
	ErrBadResponse      = errors.New("dht: malformed response")
)

// A message on the wire is a protobuf (kad-dht's pb.Message) after its
// length as an unsigned varint:
//
//	+----------------+---------------------------+
//	| length uvarint | pb.Message (length bytes) |
//	+----------------+---------------------------+

// writeFrame writes m varint-delimited.
func writeFrame(w io.Writer, m *pb.Message) error {
	b, err := proto.Marshal(m)
	if err != nil {
		return fmt.Errorf("dht: encode request: %w", err)
	}
	buf := binary.AppendUvarint(make([]byte, 0, len(b)+binary.MaxVarintLen64), uint64(len(b)))
	_, err = w.Write(append(buf, b...))
	return err
}

// readFrame reads one varint-delimited message of at most max bytes.
func readFrame(r *bufio.Reader, max int) ([]byte, error) {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		return nil, fmt.Errorf("%w: length: %v", ErrBadResponse, err)
	}
	if n > uint64(max) {
		return nil, fmt.Errorf("%w: %d bytes", ErrResponseTooLarge, n)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, fmt.Errorf("%w: body: %v", ErrBadResponse, err)
	}
	return b, nil
}

// decodeResponse parses the answer to req. It must be of req's type and
// key, and a record in it must be stored under that key; closer peers past
// maxCloserPeers, addresses past maxPeerAddrs and peers whose ID does not
// parse are dropped. The record itself is not validated here.
func decodeResponse(frame []byte, req *pb.Message) (*pb.Message, error) {
	m := new(pb.Message)
	if err := proto.Unmarshal(frame, m); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadResponse, err)
	}
	if m.GetType() != req.GetType() || !bytes.Equal(m.GetKey(), req.GetKey()) {
		return nil, fmt.Errorf("%w: answers another request", ErrBadResponse)
	}
	if rec := m.GetRecord(); rec != nil && !bytes.Equal(rec.GetKey(), req.GetKey()) {
		return nil, fmt.Errorf("%w: record under another key", ErrBadResponse)
	}
	m.ProviderPeers = nil
	m.CloserPeers = cleanPeers(m.CloserPeers)
	return m, nil
}

// cleanPeers keeps the first maxCloserPeers peers with a valid ID, each
// with at most maxPeerAddrs addresses.
func cleanPeers(ps []*pb.Message_Peer) []*pb.Message_Peer {
	out := ps[:0]
	for _, p := range ps {
		if len(out) == maxCloserPeers {
			break
		}
		if p == nil {
			continue
		}
		if _, err := peer.IDFromBytes(p.Id); err != nil {
			continue
		}
		if len(p.Addrs) > maxPeerAddrs {
			p.Addrs = p.Addrs[:maxPeerAddrs]
		}
		out = append(out, p)
	}
	clear(ps[len(out):])
	return out
}

// streamSender is the pb.MessageSender of the disjoint lookups: one stream
// of kadProtocol per request, bounded in time and in the size of the
// answer. kad-dht's own sender lives in an internal package.
type streamSender struct {
	h       host.Host
	timeout time.Duration
}

var _ pb.MessageSender = (*streamSender)(nil)

// SendRequest sends req to p and returns p's decoded answer.
func (s *streamSender) SendRequest(ctx context.Context, p peer.ID, req *pb.Message) (*pb.Message, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	st, err := s.h.NewStream(ctx, p, kadProtocol)
	if err != nil {
		return nil, fmt.Errorf("dht: open stream: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { st.Reset() })
	defer stop()
	if d, ok := ctx.Deadline(); ok {
		st.SetDeadline(d)
	}
	if err := writeFrame(st, req); err != nil {
		st.Reset()
		return nil, fmt.Errorf("dht: send request: %w", err)
	}
	st.CloseWrite()
	frame, err := readFrame(bufio.NewReader(io.LimitReader(st, maxResponseSize+binary.MaxVarintLen64)), maxResponseSize)
	if err != nil {
		st.Reset()
		return nil, err
	}
	st.Close()
	return decodeResponse(frame, req)
}

// SendMessage sends m to p without waiting for an answer.
func (s *streamSender) SendMessage(ctx context.Context, p peer.ID, m *pb.Message) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	st, err := s.h.NewStream(ctx, p, kadProtocol)
	if err != nil {
		return fmt.Errorf("dht: open stream: %w", err)
	}
	if d, ok := ctx.Deadline(); ok {
		st.SetDeadline(d)
	}
	if err := writeFrame(st, m); err != nil {
		st.Reset()
		return fmt.Errorf("dht: send message: %w", err)
	}
	return st.Close()
}
