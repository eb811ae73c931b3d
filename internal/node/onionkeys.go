package node

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/obolnet/obol/circuit"
	"github.com/obolnet/obol/descriptor"
	"github.com/obolnet/obol/dht"
	"github.com/obolnet/obol/internal/keyfile"
)

// onionKeyring is a relay's set of X25519 onion keys, on a schedule: each
// key is current for one rotation interval, and the keys of the coming
// intervals are made ahead of time, so that one descriptor names a key for
// every moment of its lifetime (specs/04-circuit.md §10). A client then
// never needs a newer descriptor because a key rotated, only because one
// expires; a relay answers each key only from shortly before its interval
// to shortly after it (onionOverlap), so the replay cache and the exposure
// of early data to a stolen key stay bounded by the interval, not by the
// descriptor's lifetime. A key's not-after time names its replay-cache
// period.
type onionKeyring struct {
	path     string
	rotate   time.Duration
	lifetime time.Duration

	mu   sync.Mutex // guards keys
	keys []storedOnionKey
}

// onionOverlap is how long before its interval a key is answered, and
// after it still chosen and answered: clocks differ by up to
// descriptor.MaxClockSkew, and a build takes seconds.
const onionOverlap = 2 * descriptor.MaxClockSkew

type storedOnionKey struct {
	Private []byte `json:"private"`
	Public  []byte `json:"public"`
	Created int64  `json:"created"`
	// Start is the first second the key is current (0 in older files:
	// Created, the key was current at once).
	Start    int64 `json:"start,omitempty"`
	NotAfter int64 `json:"not_after"`
}

func (sk storedOnionKey) start() int64 {
	if sk.Start == 0 {
		return sk.Created
	}
	return sk.Start
}

// end is the end of the key's interval, by its own not-after time: a key
// made under another rotation interval (an older configuration) keeps
// the interval it was published with.
func (sk storedOnionKey) end() int64 {
	return sk.NotAfter - int64(onionOverlap/time.Second)
}

// loadOnionKeyring reads the keyring (creating it on first use) and makes
// sure its keys cover now and the lifetime of a descriptor signed now.
func loadOnionKeyring(path string, rotate, lifetime time.Duration, now time.Time) (*onionKeyring, error) {
	k := &onionKeyring{path: path, rotate: rotate, lifetime: lifetime}
	if err := keyfile.CheckPrivate(path); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("read onion keys: %w", err)
	default:
		if err := json.Unmarshal(b, &k.keys); err != nil {
			return nil, fmt.Errorf("onion key file %s is corrupt: %w", path, err)
		}
		for _, sk := range k.keys {
			if len(sk.Private) != 32 || len(sk.Public) != 32 {
				return nil, fmt.Errorf("onion key file %s is corrupt: bad key length", path)
			}
		}
	}
	if _, err := k.Rotate(now); err != nil {
		return nil, err
	}
	return k, nil
}

// Rotate erases the keys past their not-after time and makes the keys of
// the intervals up to now plus one lifetime, at most
// descriptor.MaxOnionKeys in all. It reports whether the set changed.
func (k *onionKeyring) Rotate(now time.Time) (bool, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	changed := false
	kept := k.keys[:0]
	for _, sk := range k.keys {
		if sk.NotAfter > now.Unix() {
			kept = append(kept, sk)
		} else {
			clear(sk.Private) // a retired key is erased
			changed = true
		}
	}
	k.keys = kept
	sort.Slice(k.keys, func(i, j int) bool { return k.keys[i].start() < k.keys[j].start() })
	rot := int64(k.rotate / time.Second)
	horizon := now.Add(k.lifetime).Unix()
	for len(k.keys) < descriptor.MaxOnionKeys {
		start := now.Unix()
		if n := len(k.keys); n > 0 {
			last := k.keys[n-1].end()
			if last >= horizon {
				break
			}
			// After a pause longer than the schedule, the next key is
			// current at once.
			start = max(start, last)
		}
		ok, err := circuit.GenerateOnionKey(rand.Reader)
		if err != nil {
			return false, err
		}
		k.keys = append(k.keys, storedOnionKey{
			Private: ok.Private[:], Public: ok.Public[:], Created: now.Unix(), Start: start,
			NotAfter: start + rot + int64(onionOverlap/time.Second),
		})
		changed = true
	}
	if !changed {
		return false, nil
	}
	b, err := json.Marshal(k.keys)
	if err != nil {
		return false, err
	}
	if err := dht.WriteFileAtomic(k.path, b, 0o600); err != nil {
		return false, fmt.Errorf("write onion keys: %w", err)
	}
	return true, nil
}

// CircuitKeys are the keys the router answers at now, newest first: the
// current one, and its neighbour within onionOverlap of a turn.
func (k *onionKeyring) CircuitKeys(now time.Time) []circuit.OnionKey {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []circuit.OnionKey
	from := now.Add(onionOverlap).Unix()
	for i := len(k.keys) - 1; i >= 0; i-- {
		sk := k.keys[i]
		if sk.start() <= from && sk.NotAfter > now.Unix() {
			out = append(out, circuit.OnionKey{Private: [32]byte(sk.Private), Public: [32]byte(sk.Public)})
		}
	}
	return out
}

// Published are the keys for a descriptor signed at now, and the end of
// the last one's interval: the descriptor must not outlive it.
func (k *onionKeyring) Published(now time.Time) ([]descriptor.OnionKey, time.Time) {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []descriptor.OnionKey
	var until int64
	for _, sk := range k.keys {
		if sk.NotAfter > now.Unix() {
			out = append(out, descriptor.OnionKey{Key: [32]byte(sk.Public), NotAfter: sk.NotAfter})
			until = max(until, sk.end())
		}
	}
	return out, time.Unix(until, 0)
}
