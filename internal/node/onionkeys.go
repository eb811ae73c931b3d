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

// onionKeyring is a relay's set of X25519 onion keys. A new key takes
// over every rotation interval; an old key is still answered until its
// not-after time, which lies one descriptor lifetime past its last day as
// the current key, so a client holding the last descriptor that named it
// can still build. The not-after time also names the key's replay-cache
// period (specs/04-circuit.md §10).
type onionKeyring struct {
	path     string
	rotate   time.Duration
	lifetime time.Duration

	mu   sync.Mutex // guards keys
	keys []storedOnionKey
}

type storedOnionKey struct {
	Private  []byte `json:"private"`
	Public   []byte `json:"public"`
	Created  int64  `json:"created"`
	NotAfter int64  `json:"not_after"`
}

// loadOnionKeyring reads the keyring (creating it on first use) and makes
// sure a current key exists at now.
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

// Rotate drops expired keys and adds a new current key if the newest one
// has served its interval. It reports whether the set changed.
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
	sort.Slice(k.keys, func(i, j int) bool { return k.keys[i].Created > k.keys[j].Created })
	if len(k.keys) == 0 || now.Sub(time.Unix(k.keys[0].Created, 0)) >= k.rotate {
		ok, err := circuit.GenerateOnionKey(rand.Reader, 0)
		if err != nil {
			return false, err
		}
		k.keys = append([]storedOnionKey{{
			Private: ok.Private[:], Public: ok.Public[:], Created: now.Unix(),
			NotAfter: now.Add(k.rotate + k.lifetime).Unix(),
		}}, k.keys...)
		changed = true
	}
	if len(k.keys) > descriptor.MaxOnionKeys {
		k.keys = k.keys[:descriptor.MaxOnionKeys]
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

// CircuitKeys are the keys for the router, newest first.
func (k *onionKeyring) CircuitKeys() []circuit.OnionKey {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := make([]circuit.OnionKey, len(k.keys))
	for i, sk := range k.keys {
		out[i] = circuit.OnionKey{Period: uint64(sk.NotAfter), Private: [32]byte(sk.Private), Public: [32]byte(sk.Public)}
	}
	return out
}

// Published are the keys for the descriptor.
func (k *onionKeyring) Published() []descriptor.OnionKey {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := make([]descriptor.OnionKey, len(k.keys))
	for i, sk := range k.keys {
		out[i] = descriptor.OnionKey{Key: [32]byte(sk.Public), NotAfter: sk.NotAfter}
	}
	return out
}
