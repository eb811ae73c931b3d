package hidden

import (
	"context"
	"fmt"
	"sync"

	"github.com/obolnet/obol/circuit"
	"github.com/obolnet/obol/circuit/client"
)

// control routes the hidden-service cells a circuit's last hop sends to
// whoever waits for them. Bodies are copied: the cell buffer is reused.
type control struct {
	c    *client.Circuit
	last int

	mu      sync.Mutex // guards the fields below
	waiters map[circuit.RelayCommand]chan []byte
	handler map[circuit.RelayCommand]func([]byte)
}

func attach(c *client.Circuit) *control {
	k := &control{c: c, last: len(c.Hops()) - 1,
		waiters: map[circuit.RelayCommand]chan []byte{}, handler: map[circuit.RelayCommand]func([]byte){}}
	c.SetControl(k.deliver)
	return k
}

func (k *control) deliver(hop int, rc circuit.RelayCell) {
	if hop != k.last {
		return
	}
	k.mu.Lock()
	ch, f := k.waiters[rc.Command], k.handler[rc.Command]
	k.mu.Unlock()
	switch {
	case f != nil:
		f(rc.Body)
	case ch != nil:
		select {
		case ch <- append([]byte(nil), rc.Body...):
		default:
			k.c.Close() // more answers than asked for
		}
	default:
		k.c.Close() // an answer nobody asked for
	}
}

// expect registers interest in cmd before the request is sent.
func (k *control) expect(cmd circuit.RelayCommand, n int) chan []byte {
	ch := make(chan []byte, n)
	k.mu.Lock()
	k.waiters[cmd] = ch
	k.mu.Unlock()
	return ch
}

// handle calls f, in the circuit's receive path, for every cmd cell.
func (k *control) handle(cmd circuit.RelayCommand, f func([]byte)) {
	k.mu.Lock()
	k.handler[cmd] = f
	k.mu.Unlock()
}

// cell is a cell for the last hop, to send early (buildWith).
func cell(cmd circuit.RelayCommand, body []byte) circuit.RelayCell {
	return circuit.RelayCell{Command: cmd, Body: body}
}

func (k *control) send(ctx context.Context, cmd circuit.RelayCommand, body []byte) error {
	return k.c.SendTo(ctx, k.last, circuit.RelayCell{Command: cmd, Body: body})
}

// wait returns the next body on ch, or fails when the circuit or ctx ends.
func (k *control) wait(ctx context.Context, ch chan []byte) ([]byte, error) {
	select {
	case b := <-ch:
		return b, nil
	case <-k.c.Done():
		return nil, fmt.Errorf("hidden: circuit closed: %w", k.c.Err())
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
