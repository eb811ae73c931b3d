package hidden

import (
	"crypto/ecdh"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/obolnet/obol/dht"
)

// Client authorization keys (specs/07-hidden.md §5.7). A client holds an
// X25519 key pair; the service lists the public halves of the clients it
// admits, and only those clients can read its intro points. Keys are
// written as "x25519:" and the unpadded base32 of the 32 bytes.
const clientKeyPrefix = "x25519:"

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// FormatClientKey writes a client key (public or private) in its text
// form.
func FormatClientKey(k [32]byte) string {
	return clientKeyPrefix + strings.ToLower(b32.EncodeToString(k[:]))
}

// ParseClientKey reads a key in the text form of FormatClientKey.
func ParseClientKey(s string) ([32]byte, error) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(s), clientKeyPrefix)
	b, err := b32.DecodeString(strings.ToUpper(rest))
	if !ok || err != nil || len(b) != 32 {
		return [32]byte{}, errors.New("hidden: client key is not x25519: and 52 base32 characters")
	}
	return [32]byte(b), nil
}

// LoadAuthorizedClients reads the public keys of the clients a service
// admits: one key per file named *.auth in dir. A malformed file, or a
// directory without any, is an error: a service meant for listed
// clients must not start open to everyone, nor closed to all.
func LoadAuthorizedClients(dir string) ([][32]byte, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.auth"))
	if err != nil {
		return nil, err
	}
	slices.Sort(files)
	var keys [][32]byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("hidden: authorized client: %w", err)
		}
		k, err := ParseClientKey(string(b))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		if _, err := ecdh.X25519().NewPublicKey(k[:]); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("hidden: no authorized client (*.auth file) in %s", dir)
	}
	return keys, nil
}

// LoadClientKeys reads a client's authorization keys: one private key per
// file named *.key in dir. If there is none it creates default.key (mode
// 0600) and beside it default.auth, the public key to give the service's
// operator.
func LoadClientKeys(dir string) ([]*ecdh.PrivateKey, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.key"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		k, err := ecdh.X25519().GenerateKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("hidden: client keys: %w", err)
		}
		if err := dht.WriteFileAtomic(filepath.Join(dir, "default.key"), []byte(FormatClientKey([32]byte(k.Bytes()))+"\n"), 0o600); err != nil {
			return nil, fmt.Errorf("hidden: write client key: %w", err)
		}
		pub := FormatClientKey([32]byte(k.PublicKey().Bytes())) + "\n"
		if err := dht.WriteFileAtomic(filepath.Join(dir, "default.auth"), []byte(pub), 0o644); err != nil {
			return nil, fmt.Errorf("hidden: write client key: %w", err)
		}
		return []*ecdh.PrivateKey{k}, nil
	}
	slices.Sort(files)
	var keys []*ecdh.PrivateKey
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("hidden: client key: %w", err)
		}
		raw, err := ParseClientKey(string(b))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		k, err := ecdh.X25519().NewPrivateKey(raw[:])
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		keys = append(keys, k)
	}
	return keys, nil
}
