package dht

import (
	"bytes"
	"errors"
	"strings"
	"time"

	record "github.com/libp2p/go-libp2p-record"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/obolnet/obol/descriptor"
)

// Record namespaces. A relay descriptor lives under /obol-relay/<peer ID
// bytes>; a hidden-service descriptor under /obol-hs/<index> (hs.go).
const (
	RelayNamespace = "obol-relay"
	HSNamespace    = "obol-hs"
)

// Errors of the validators, beside those of package descriptor.
var (
	ErrBadKey        = errors.New("dht: malformed record key")
	ErrKeyMismatch   = errors.New("dht: record is not bound to its key")
	ErrNoValidRecord = errors.New("dht: no valid record")
)

// RelayKey is the DHT key of a relay's descriptor.
func RelayKey(id peer.ID) string { return "/" + RelayNamespace + "/" + string(id) }

func relayKeyPeer(key string) (peer.ID, error) {
	rest, ok := strings.CutPrefix(key, "/"+RelayNamespace+"/")
	if !ok {
		return "", ErrBadKey
	}
	id, err := peer.IDFromBytes([]byte(rest))
	if err != nil {
		return "", ErrBadKey
	}
	return id, nil
}

// relayValidator accepts a relay descriptor only if it verifies at the
// current time and is signed by the peer its key names; among several it
// selects the highest sequence number.
type relayValidator struct{ now func() time.Time }

var _ record.Validator = relayValidator{}

func (v relayValidator) Validate(key string, value []byte) error {
	_, err := v.verify(key, value)
	return err
}

func (v relayValidator) verify(key string, value []byte) (*descriptor.Relay, error) {
	id, err := relayKeyPeer(key)
	if err != nil {
		return nil, err
	}
	u, err := descriptor.Decode(value)
	if err != nil {
		return nil, err
	}
	r, err := u.Verify(v.now())
	if err != nil {
		return nil, err
	}
	if r.PeerID != id {
		return nil, ErrKeyMismatch
	}
	return r, nil
}

// Select returns the index of the best valid record: highest sequence,
// then latest publish time, then lowest bytes, so every node agrees.
func (v relayValidator) Select(key string, values [][]byte) (int, error) {
	best, bestIdx := (*descriptor.Relay)(nil), -1
	for i, val := range values {
		r, err := v.verify(key, val)
		if err != nil {
			continue
		}
		if best == nil || better(r, val, best, values[bestIdx]) {
			best, bestIdx = r, i
		}
	}
	if bestIdx < 0 {
		return 0, ErrNoValidRecord
	}
	return bestIdx, nil
}

func better(a *descriptor.Relay, araw []byte, b *descriptor.Relay, braw []byte) bool {
	if a.Seq != b.Seq {
		return a.Seq > b.Seq
	}
	if a.Published != b.Published {
		return a.Published > b.Published
	}
	return bytes.Compare(araw, braw) < 0
}

// Validator returns the namespaced validator obol's DHT runs with.
func Validator(now func() time.Time) record.NamespacedValidator {
	return record.NamespacedValidator{
		RelayNamespace: relayValidator{now: now},
		HSNamespace:    hsValidator{now: now},
	}
}
