// Package lazystream opens libp2p streams that name their protocol in
// their first flight (multistream-select's lazy mode), rather than after
// identify has run on a new connection as libp2p's NewStream waits for:
// a round trip less on a fresh connection. A peer that does not speak
// the protocol fails the stream at its first read.
package lazystream

import (
	"context"
	"errors"
	"io"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/protocol"
	msmux "github.com/multiformats/go-multistream"
)

// ErrNoDirect: none of the connections is direct (all are relayed).
var ErrNoDirect = errors.New("no direct connection")

// Open opens a stream of protocol proto on the first direct connection of
// conns.
func Open(ctx context.Context, conns []network.Conn, proto protocol.ID) (network.Stream, error) {
	for _, c := range conns {
		if c.Stat().Limited {
			continue
		}
		s, err := c.NewStream(ctx)
		if err != nil {
			return nil, err
		}
		if err := s.SetProtocol(proto); err != nil {
			s.Reset()
			return nil, err
		}
		return &stream{Stream: s, rw: msmux.NewMSSelect(s, proto)}, nil
	}
	return nil, ErrNoDirect
}

// stream is a stream whose protocol header goes out with its first write
// and whose answer is read with its first read.
type stream struct {
	network.Stream
	rw io.ReadWriteCloser
}

func (s *stream) Read(b []byte) (int, error)  { return s.rw.Read(b) }
func (s *stream) Write(b []byte) (int, error) { return s.rw.Write(b) }
func (s *stream) Close() error                { return s.rw.Close() }

// CloseWrite sends the protocol header first if nothing was written.
func (s *stream) CloseWrite() error {
	if f, ok := s.rw.(interface{ Flush() error }); ok {
		_ = f.Flush()
	}
	return s.Stream.CloseWrite()
}
