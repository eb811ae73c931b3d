package view

import (
	"io"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
)

// Bounds of the server.
const (
	streamTimeout  = 10 * time.Second // one request and its answer
	maxConcurrent  = 64               // requests served at once; more are reset
	digestPageSize = MaxDigestEntries
)

// server answers /obol/view/2 requests from a Set.
type server struct {
	set  *Set
	busy chan struct{}
}

// Serve registers the view protocol on h, answering from set. Call the
// returned function to stop.
func Serve(h host.Host, set *Set) (stop func()) {
	s := &server{set: set, busy: make(chan struct{}, maxConcurrent)}
	h.SetStreamHandler(Protocol, s.handle)
	return func() { h.RemoveStreamHandler(Protocol) }
}

func (s *server) handle(st network.Stream) {
	select {
	case s.busy <- struct{}{}:
		defer func() { <-s.busy }()
	default:
		st.Reset()
		return
	}
	st.SetDeadline(time.Now().Add(streamTimeout))
	b, err := io.ReadAll(io.LimitReader(st, maxRequestSize+1))
	if err != nil {
		st.Reset()
		return
	}
	out, err := s.answer(b)
	if err != nil {
		st.Reset()
		return
	}
	if _, err := st.Write(out); err != nil {
		st.Reset()
		return
	}
	st.Close()
}

// answer is the response to request b.
func (s *server) answer(b []byte) ([]byte, error) {
	q, err := DecodeRequest(b)
	if err != nil {
		return nil, err
	}
	if len(q.Fetch) == 0 {
		return EncodeDigest(s.set.Digest(q.Epoch, q.Since, digestPageSize))
	}
	var rs Records
	for _, id := range q.Fetch {
		if rec, ok := s.set.RecordByShort(id); ok {
			rs = append(rs, rec)
		}
	}
	return EncodeRecords(rs)
}
