package hidden_test

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/obolnet/obol/circuit/errkind"
	"github.com/obolnet/obol/hidden"
)

// A client's key directory is created with a key and its public half;
// the service reads the public half back; malformed or missing keys stop
// the service from starting rather than open it to everyone.
func TestClientKeyFiles(t *testing.T) {
	dir := t.TempDir()
	keys, err := hidden.LoadClientKeys(dir)
	if err != nil || len(keys) != 1 {
		t.Fatalf("%d keys, %v", len(keys), err)
	}
	again, err := hidden.LoadClientKeys(dir)
	if err != nil || len(again) != 1 || !again[0].Equal(keys[0]) {
		t.Fatalf("key not kept: %v", err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "default.key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", fi.Mode(), err)
	}
	pubs, err := hidden.LoadAuthorizedClients(dir)
	if err != nil || len(pubs) != 1 || !bytes.Equal(pubs[0][:], keys[0].PublicKey().Bytes()) {
		t.Fatalf("authorized clients %v: %v", pubs, err)
	}
	if _, err := hidden.LoadAuthorizedClients(t.TempDir()); err == nil {
		t.Fatal("a directory without clients accepted")
	}
	bad := t.TempDir()
	os.WriteFile(filepath.Join(bad, "x.auth"), []byte("x25519:tooshort\n"), 0o644)
	if _, err := hidden.LoadAuthorizedClients(bad); err == nil {
		t.Fatal("a malformed key accepted")
	}
	if k, err := hidden.ParseClientKey(hidden.FormatClientKey(pubs[0])); err != nil || k != pubs[0] {
		t.Fatalf("round trip: %v", err)
	}
}

// A service that admits one client: that client connects; a client
// without a key, or with another key, is told it is not authorized
// before it introduces itself anywhere.
func TestClientAuthorization(t *testing.T) {
	tn := newTestNet(t, 6)
	alice, _ := hidden.LoadClientKeys(t.TempDir())
	mallory, _ := hidden.LoadClientKeys(t.TempDir())
	n, _ := tn.endpoint()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l, err := hidden.Listen(ctx, hidden.ServiceConfig{Config: n, Key: newKey(t),
		AuthorizedClients: [][32]byte{[32]byte(alice[0].PublicKey().Bytes())}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	body := []byte("for alice only")
	serveHTTP(t, l, body)

	dial := func(keys []*ecdh.PrivateKey) ([]byte, error) {
		n, _ := tn.endpoint()
		n.ClientKeys = keys
		c, err := hidden.NewConnector(n)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return get(t, c, l.Address())
	}
	if got, err := dial(alice); err != nil || !bytes.Equal(got, body) {
		t.Fatalf("authorized client: %q %v", got, err)
	}
	for name, keys := range map[string][]*ecdh.PrivateKey{"no key": nil, "another key": mallory} {
		if _, err := dial(keys); !errors.Is(err, hidden.ErrUnauthorized) || errkind.Of(err) != errkind.NotAllowed {
			t.Fatalf("%s: %v", name, err)
		}
	}
	if s := l.Status(); s.Intro.Received != 1 || s.Intro.Joined != 1 {
		t.Fatalf("the service saw introductions other than the authorized client's: %+v", s.Intro)
	}
}
