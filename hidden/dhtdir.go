package hidden

import (
	"context"

	"github.com/obolnet/obol/dht"
)

// DHTDirectory lets a relay fetch and store hidden-service descriptors
// for clients and services that ask through a circuit: it has the
// methods of router.HSDirectory, backed by the relay's DHT node.
type DHTDirectory struct{ Node *dht.Node }

// FetchHS returns the raw record stored under index.
func (d DHTDirectory) FetchHS(ctx context.Context, index [32]byte) ([]byte, error) {
	_, raw, err := d.Node.GetHS(ctx, index)
	return raw, err
}

// StoreHS validates and stores rec.
func (d DHTDirectory) StoreHS(ctx context.Context, rec []byte) error { return d.Node.PutHS(ctx, rec) }
