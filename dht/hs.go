package dht

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	kad "github.com/libp2p/go-libp2p-kad-dht"
	record "github.com/libp2p/go-libp2p-record"
	"github.com/libp2p/go-libp2p/core/routing"

	"github.com/obolnet/obol/descriptor"
)

// HSKey is the DHT key of a hidden-service descriptor replica: the
// namespace and the 32 raw bytes of descriptor.HSIndex. Neither the key
// nor the record names the service; only someone who knows its address
// can compute the key or read the record (specs/07-hidden.md).
func HSKey(index [32]byte) string { return "/" + HSNamespace + "/" + string(index[:]) }

func hsKeyIndex(key string) ([32]byte, error) {
	rest, ok := strings.CutPrefix(key, "/"+HSNamespace+"/")
	if !ok || len(rest) != 32 {
		return [32]byte{}, ErrBadKey
	}
	return [32]byte([]byte(rest)), nil
}

// hsValidator accepts a hidden-service descriptor only if it is within
// the size limit, signed by the blinded key it carries, unexpired at the
// current time and stored under the index derived from that key, its
// replica number and its period; among several it selects the highest
// revision.
type hsValidator struct{ now func() time.Time }

var _ record.Validator = hsValidator{}

func (v hsValidator) Validate(key string, value []byte) error {
	_, err := v.verify(key, value)
	return err
}

func (v hsValidator) verify(key string, value []byte) (*descriptor.HSRecord, error) {
	idx, err := hsKeyIndex(key)
	if err != nil {
		return nil, err
	}
	u, err := descriptor.DecodeHS(value)
	if err != nil {
		return nil, err
	}
	r, err := u.Verify(v.now())
	if err != nil {
		return nil, err
	}
	if r.Index() != idx {
		return nil, ErrKeyMismatch
	}
	return r, nil
}

// Select returns the best valid record: highest revision, then latest
// publish time, then lowest bytes.
func (v hsValidator) Select(key string, values [][]byte) (int, error) {
	var best *descriptor.HSRecord
	bestIdx := -1
	for i, val := range values {
		r, err := v.verify(key, val)
		if err != nil {
			continue
		}
		if best == nil || hsBetter(r, val, best, values[bestIdx]) {
			best, bestIdx = r, i
		}
	}
	if bestIdx < 0 {
		return 0, ErrNoValidRecord
	}
	return bestIdx, nil
}

func hsBetter(a *descriptor.HSRecord, araw []byte, b *descriptor.HSRecord, braw []byte) bool {
	if a.Revision != b.Revision {
		return a.Revision > b.Revision
	}
	if a.Published != b.Published {
		return a.Published > b.Published
	}
	return bytes.Compare(araw, braw) < 0
}

// PutHS stores a signed hidden-service descriptor under its index. The
// record is validated first.
func (n *Node) PutHS(ctx context.Context, rec []byte) error {
	u, err := descriptor.DecodeHS(rec)
	if err != nil {
		return err
	}
	r, err := u.Verify(n.cfg.Now())
	if err != nil {
		return err
	}
	if err := n.kad.PutValue(ctx, HSKey(r.Index()), rec); err != nil {
		return fmt.Errorf("dht: put hidden-service descriptor: %w", err)
	}
	return nil
}

// GetHS finds the best current descriptor stored under index, by a
// disjoint lookup and, if that finds nothing, by kad-dht's own. The record
// has passed the validator; the caller decrypts it with the address.
func (n *Node) GetHS(ctx context.Context, index [32]byte) (*descriptor.HSRecord, []byte, error) {
	key := HSKey(index)
	v := hsValidator{now: n.cfg.Now}
	if rec, err := n.getRecord(ctx, key); err == nil {
		if r, err := v.verify(key, rec); err == nil {
			return r, rec, nil
		}
	}
	if ctx.Err() != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrNotFound, ctx.Err())
	}
	return n.getHSPlain(ctx, key)
}

// getHSPlain is kad-dht's lookup of a hidden-service descriptor.
func (n *Node) getHSPlain(ctx context.Context, key string) (*descriptor.HSRecord, []byte, error) {
	rec, err := n.kad.GetValue(ctx, key, kad.Quorum(n.cfg.Quorum))
	if errors.Is(err, routing.ErrNotFound) || (err == nil && rec == nil) {
		return nil, nil, ErrNotFound
	}
	if err != nil && rec == nil {
		return nil, nil, fmt.Errorf("dht: hidden-service lookup: %w", err)
	}
	r, err := hsValidator{now: n.cfg.Now}.verify(key, rec)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrNotFound, err)
	}
	return r, rec, nil
}
