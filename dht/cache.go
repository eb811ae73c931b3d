package dht

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/obolnet/obol/descriptor"
)

// Cache holds verified relay descriptors a client has learned, so that
// paths are picked from it and never from one DHT lookup per hop. It
// persists to a file so that a restarted client starts warm; every record
// is verified again when loaded.
//
// File format: a sequence of frames, each a 2-byte big-endian length and
// a signed descriptor of that length.
type Cache struct {
	path string
	now  func() time.Time

	mu      sync.Mutex // guards entries
	entries map[peer.ID]cacheEntry
}

type cacheEntry struct {
	raw   []byte
	relay *descriptor.Relay
}

// maxCacheEntries bounds the cache, and so the cache file, whatever the
// DHT serves.
const maxCacheEntries = 10000

// ErrCacheFull means the cache holds as many relays as it may.
var ErrCacheFull = errors.New("dht: descriptor cache full")

// NewCache returns an empty cache that saves to path ("" for none).
func NewCache(path string, now func() time.Time) *Cache {
	if now == nil {
		now = time.Now
	}
	return &Cache{path: path, now: now, entries: make(map[peer.ID]cacheEntry)}
}

// Load reads the cache file, keeping the records that still verify. A
// missing file is an empty cache; a damaged tail is ignored.
func (c *Cache) Load() error {
	if c.path == "" {
		return nil
	}
	recs, err := ReadRecords(c.path)
	if err != nil {
		return err
	}
	for _, rec := range recs {
		_, _ = c.Put(rec) // an expired or bad record is simply dropped
	}
	return nil
}

// ReadRecords reads a file in the cache's format and returns its records,
// unverified: a missing file has none, a damaged tail is ignored.
func ReadRecords(path string) ([][]byte, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("dht: read descriptor cache: %w", err)
	}
	return splitFrames(b), nil
}

// WriteRecords writes records to path atomically, in the cache's format.
func WriteRecords(path string, recs [][]byte) error {
	var b []byte
	for _, rec := range recs {
		b = binary.BigEndian.AppendUint16(b, uint16(len(rec)))
		b = append(b, rec...)
	}
	if err := WriteFileAtomic(path, b, 0o600); err != nil {
		return fmt.Errorf("dht: save descriptor cache: %w", err)
	}
	return nil
}

// splitFrames parses the cache file format, stopping at the first frame
// that does not fit.
func splitFrames(b []byte) [][]byte {
	var out [][]byte
	for len(b) >= 2 && len(out) < maxCacheEntries {
		n := int(binary.BigEndian.Uint16(b))
		if n == 0 || n > descriptor.MaxSize || len(b) < 2+n {
			break
		}
		out = append(out, b[2:2+n])
		b = b[2+n:]
	}
	return out
}

// Save writes the cache file atomically.
func (c *Cache) Save() error {
	if c.path == "" {
		return nil
	}
	c.mu.Lock()
	recs := make([][]byte, 0, len(c.entries))
	for _, e := range c.entries {
		recs = append(recs, e.raw)
	}
	c.mu.Unlock()
	return WriteRecords(c.path, recs)
}

// Put verifies rec and keeps it unless the cache already has a record of
// that relay with a higher sequence number.
func (c *Cache) Put(rec []byte) (*descriptor.Relay, error) {
	u, err := descriptor.Decode(rec)
	if err != nil {
		return nil, err
	}
	r, err := u.Verify(c.now())
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	old, ok := c.entries[r.PeerID]
	if ok && old.relay.Seq > r.Seq {
		return old.relay, nil
	}
	if !ok && len(c.entries) >= maxCacheEntries {
		return nil, ErrCacheFull
	}
	c.entries[r.PeerID] = cacheEntry{raw: u.Bytes(), relay: r}
	return r, nil
}

// Get returns the cached descriptor of id if it has not expired.
func (c *Cache) Get(id peer.ID) (*descriptor.Relay, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[id]
	if !ok || !e.relay.ExpiresAt().After(c.now()) {
		return nil, false
	}
	return e.relay, true
}

// Remove forgets a relay, e.g. one found unreachable.
func (c *Cache) Remove(id peer.ID) {
	c.mu.Lock()
	delete(c.entries, id)
	c.mu.Unlock()
}

// Relays returns every unexpired descriptor, dropping expired ones.
func (c *Cache) Relays() []*descriptor.Relay {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	out := make([]*descriptor.Relay, 0, len(c.entries))
	for id, e := range c.entries {
		if !e.relay.ExpiresAt().After(now) {
			delete(c.entries, id)
			continue
		}
		out = append(out, e.relay)
	}
	return out
}

// Len is the number of entries, expired ones included until pruned.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}
