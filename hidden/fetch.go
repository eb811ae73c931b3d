package hidden

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/obolnet/obol/circuit"
	"github.com/obolnet/obol/descriptor"
)

// Descriptors are fetched and stored through a three-hop circuit whose
// last relay does the DHT get or put (HS_FETCH, HS_STORE). The guard sees
// a circuit and nothing of its content; the last relay sees a DHT index or
// an encrypted record, never who asks; the DHT nodes see that relay.
const fetchAttempts = 3

var errUnavailable = errors.New("hidden: relay does not serve descriptors")

// errNoNewerDescriptor: every replica found was of the revision the
// client had already tried, or older.
var errNoNewerDescriptor = errors.New("hidden: no newer descriptor than the one whose intro points the service has left")

// fetchDescriptor finds and decrypts addr's descriptor for the current
// period, trying the replicas in random order on up to fetchAttempts
// relays. A record of a revision at or below above counts as not found
// (above 0: any).
func (n *Config) fetchDescriptor(ctx context.Context, addr descriptor.HSAddress, above uint64) (*descriptor.HSContent, *descriptor.HSRecord, error) {
	p := descriptor.PeriodAt(n.Now(), n.Period)
	blinded, err := descriptor.BlindPublicKey(addr, p)
	if err != nil {
		return nil, nil, err
	}
	replicas := rand.Perm(descriptor.HSReplicas)
	tried := map[peer.ID]bool{}
	// lastErr is what the directories answered (not found, or a record
	// that does not open); failed why none could be asked. A service is
	// unknown only if a directory said so.
	var lastErr, failed error
	index := func() [32]byte { return descriptor.HSIndex(blinded, uint8(replicas[0]), p) }
	for range fetchAttempts {
		// The first fetch rides behind the CREATE.
		var first chan []byte
		c, k, err := n.buildToWith(ctx, nil, descriptor.RoleRelay, tried, func(k *control) []circuit.RelayCell {
			var rc circuit.RelayCell
			first, rc = k.fetchRequest(index())
			return []circuit.RelayCell{rc}
		})
		if err != nil {
			if lastErr == nil {
				return nil, nil, fmt.Errorf("hidden: no descriptor directory could be reached: %w", err)
			}
			return nil, nil, errors.Join(lastErr, err)
		}
		tried[c.Hops()[pathLen-1]] = true
		for len(replicas) > 0 {
			var rec []byte
			if first != nil {
				rec, err = k.fetchAnswer(ctx, first)
				first = nil
			} else {
				rec, err = k.fetch(ctx, index())
			}
			if err != nil {
				failed = err
				break // another relay
			}
			replicas = replicas[1:]
			if rec == nil {
				if lastErr == nil {
					lastErr = ErrUnknownService
				}
				continue
			}
			content, r, err := open(rec, addr, n)
			if err == nil && above > 0 && r.Revision <= above {
				if lastErr == nil {
					lastErr = errNoNewerDescriptor
				}
				continue
			}
			if err == nil {
				go n.padThenClose(c) // the setup machine, then close
				return content, r, nil
			}
			if errors.Is(err, descriptor.ErrHSUnauthorized) { // every replica says the same
				c.Close()
				return nil, nil, fmt.Errorf("%w: %w", ErrUnauthorized, err)
			}
			lastErr = err
		}
		c.Close()
		if len(replicas) == 0 || ctx.Err() != nil {
			break
		}
	}
	if lastErr == nil {
		if failed == nil {
			failed = ctx.Err()
		}
		return nil, nil, fmt.Errorf("hidden: no descriptor directory answered: %w", failed)
	}
	return nil, nil, lastErr
}

func open(rec []byte, addr descriptor.HSAddress, n *Config) (*descriptor.HSContent, *descriptor.HSRecord, error) {
	u, err := descriptor.DecodeHS(rec)
	if err != nil {
		return nil, nil, err
	}
	r, err := u.Verify(n.Now())
	if err != nil {
		return nil, nil, err
	}
	c, err := r.Decrypt(addr, n.ClientKeys...)
	return c, r, err
}

// fetch asks the last hop for the record under idx; nil means not found.
func (k *control) fetch(ctx context.Context, idx [32]byte) ([]byte, error) {
	ch, rc := k.fetchRequest(idx)
	if err := k.send(ctx, rc.Command, rc.Body); err != nil {
		return nil, err
	}
	return k.fetchAnswer(ctx, ch)
}

// fetchRequest registers for the answer to a fetch of idx and returns
// the request, to send now or early.
func (k *control) fetchRequest(idx [32]byte) (chan []byte, circuit.RelayCell) {
	ch := k.expect(descriptor.CmdHSFetched, descriptor.MaxSize/descriptor.MaxHSFetchChunk+2)
	return ch, cell(descriptor.CmdHSFetch, idx[:])
}

// fetchAnswer reads the record the last hop sends on ch; nil means not
// found.
func (k *control) fetchAnswer(ctx context.Context, ch chan []byte) ([]byte, error) {
	var rec []byte
	for {
		b, err := k.wait(ctx, ch)
		if err != nil {
			return nil, err
		}
		m, err := descriptor.ParseHSFetched(b)
		switch {
		case err != nil:
			return nil, err
		case m.Status == descriptor.FetchUnavailable:
			return nil, errUnavailable
		case m.Status != descriptor.FetchOK:
			return nil, nil
		case len(rec)+len(m.Chunk) > int(m.Total):
			return nil, fmt.Errorf("%w: HS_FETCHED overruns", descriptor.ErrHSMessage)
		}
		rec = append(rec, m.Chunk...)
		if len(rec) == int(m.Total) {
			return rec, nil
		}
	}
}

// storeDescriptor stores rec through a circuit to a random relay not in
// exclude, and adds that relay to exclude (if not nil).
func (n *Config) storeDescriptor(ctx context.Context, rec []byte, exclude map[peer.ID]bool) error {
	c, err := n.buildTo(ctx, nil, descriptor.RoleRelay, exclude)
	if err != nil {
		return err
	}
	defer c.Close()
	if exclude != nil {
		exclude[c.Hops()[pathLen-1]] = true // tried
	}
	k := attach(c)
	ch := k.expect(descriptor.CmdHSStored, 1)
	for off := 0; off < len(rec); off += descriptor.MaxHSFetchChunk {
		m := descriptor.HSFetched{Total: uint16(len(rec)), Chunk: rec[off:min(off+descriptor.MaxHSFetchChunk, len(rec))]}
		if err := k.send(ctx, descriptor.CmdHSStore, m.Marshal()); err != nil {
			return err
		}
	}
	b, err := k.wait(ctx, ch)
	if err != nil {
		return err
	}
	if len(b) == 1 && b[0] == descriptor.StoreRejected {
		return fmt.Errorf("%w (status %v)", errStoreRejected, b)
	}
	if len(b) != 1 || b[0] != descriptor.StoreOK {
		return fmt.Errorf("hidden: relay refused the descriptor (status %v)", b)
	}
	return nil
}

// errStoreRejected is a relay's refusal of a descriptor: it did not
// validate, or the DHT holds one at least as new.
var errStoreRejected = errors.New("hidden: relay refused the descriptor")
