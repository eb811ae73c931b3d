package node

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/obolnet/obol/dht"
	"github.com/obolnet/obol/dht/view"
	"github.com/obolnet/obol/internal/keyfile"
)

// Files in a node's data directory. Key files are created on first use
// with mode 0600 inside a directory with mode 0700.
const (
	IdentityFile = "identity.key"    // libp2p Ed25519 identity (protobuf)
	OnionKeyFile = "onion-keys.json" // X25519 onion keys, current and retiring
	CacheFile    = "relays.cache"    // descriptor cache of a client
	ViewFile     = "view.cache"      // a relay's view, in the cache's format
)

// prepareDataDir creates dir with mode 0700, or narrows the mode of an
// existing one that others can reach, as Tor does with its DataDirectory.
func prepareDataDir(dir string, log *slog.Logger) error {
	if dir == "" {
		return errors.New("no data directory given")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create data directory: %w", err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("data directory %s is not a directory", dir)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		if err := os.Chmod(dir, 0o700); err != nil {
			return fmt.Errorf("data directory %s is open to others and cannot be fixed: %w", dir, err)
		}
		log.Info("narrowed data directory permissions", "path", dir, "old_mode", fmt.Sprintf("%04o", fi.Mode().Perm()))
	}
	return nil
}

// loadIdentity reads or creates the node's Ed25519 identity in dir.
func loadIdentity(dir string) (crypto.PrivKey, error) {
	path := filepath.Join(dir, IdentityFile)
	if err := keyfile.CheckPrivate(path); err != nil {
		return nil, err
	}
	return dht.LoadIdentity(path)
}

// loadView fills set with the records saved in path that still verify,
// so that a restarted relay extends circuits at once, before its first
// sync, and syncs from the relays it knew. A missing file is no records.
func loadView(set *view.Set, path string) (int, error) {
	recs, err := dht.ReadRecords(path)
	n := 0
	for _, rec := range recs {
		if _, err := set.Put(rec); err == nil { // an expired or bad one is dropped
			n++
		}
	}
	return n, err
}

// saveView writes set's records to path, in the cache's format.
func saveView(set *view.Set, path string) error {
	var recs [][]byte
	for _, r := range set.Relays() {
		if rec, ok := set.Record(r.PeerID); ok {
			recs = append(recs, rec)
		}
	}
	return dht.WriteRecords(path, recs)
}
