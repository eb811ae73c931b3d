package client

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/obolnet/obol/circuit"
	"github.com/obolnet/obol/circuit/padding"
)

// Circuit padding (specs/12-padding.md): the client's halves of the
// padding machines it runs with the hops of a circuit, and the DROP
// cells and answers the hops send back.

// clientPad is a circuit's padding state; the circuit's mu guards it.
type clientPad struct {
	halves   [padding.MaxMachines]*padding.Half
	answers  chan padding.Negotiated // the hops' PADDING_NEGOTIATED
	sent     uint64                  // DROP cells the client's halves sent
	received uint64                  // DROP cells received from any hop
}

// ErrPaddingRefused is a hop's refusal of a padding machine.
var ErrPaddingRefused = errors.New("client: the hop refused the padding machine")

// Pad starts machine m with hop (0-based) in slot: it asks the hop to
// run the machine's relay half, and runs the client half here until it
// ends, a stop event ends it or the circuit closes. It returns once the
// hop has answered.
func (c *Circuit) Pad(ctx context.Context, hop int, slot uint8, m padding.Machine) error {
	if slot >= padding.MaxMachines {
		return fmt.Errorf("client: padding slot %d", slot)
	}
	c.mu.Lock()
	if c.pad.halves[slot] != nil {
		c.mu.Unlock()
		return fmt.Errorf("client: padding slot %d busy", slot)
	}
	if c.pad.answers == nil {
		c.pad.answers = make(chan padding.Negotiated, padding.MaxMachines)
	}
	answers := c.pad.answers
	var err error
	if m.Relay.Cells > 0 {
		var body []byte
		body, err = padding.Negotiate{Command: padding.Start, Machine: m.ID, Slot: slot, Program: m.Relay}.MarshalBinary()
		if err == nil {
			err = c.sealLocked(ctx, hop, circuit.RelayCell{Command: padding.RelayPaddingNegotiate, Body: body})
		}
	}
	if err == nil && m.Client.Cells > 0 {
		err = m.Client.Validate()
		if err == nil {
			c.startHalf(hop, slot, m.Client)
		}
	}
	c.mu.Unlock()
	if err != nil || m.Relay.Cells == 0 {
		return err
	}
	select {
	case a := <-answers:
		if a.Response != padding.OK {
			return ErrPaddingRefused
		}
		return nil
	case <-c.done:
		return ErrCircuitClosed
	case <-ctx.Done():
		return ctx.Err()
	}
}

// startHalf runs the client's half of a machine. mu is held.
func (c *Circuit) startHalf(hop int, slot uint8, p padding.Program) {
	hf := padding.NewHalf(p)
	c.pad.halves[slot] = hf
	go func() {
		hf.Run(context.Background(), padding.SystemClock{}, padding.NewRand(), func() error {
			c.mu.Lock()
			defer c.mu.Unlock()
			if c.err != nil {
				return c.err
			}
			c.pad.sent++
			return c.sealLocked(context.Background(), hop, circuit.RelayCell{Command: circuit.RelayDrop})
		})
		c.mu.Lock()
		if c.pad.halves[slot] == hf {
			c.pad.halves[slot] = nil
		}
		c.mu.Unlock()
	}()
}

// padEvent tells the client's halves of a non-padding cell sent
// (StopOnForward) or received (StopOnBackward). mu is held.
func (c *Circuit) padEvent(e uint8) {
	for _, hf := range c.pad.halves {
		if hf != nil {
			hf.Event(e)
		}
	}
}

// padCell takes a DROP or PADDING_NEGOTIATED from a hop; it reports
// false for any other cell. mu is held.
func (c *Circuit) padCell(rc circuit.RelayCell) (bool, error) {
	switch rc.Command {
	case circuit.RelayDrop:
		c.pad.received++
		return true, nil
	case padding.RelayPaddingNegotiated:
		a, err := padding.ParseNegotiated(rc.Body)
		if err != nil {
			return true, err
		}
		select {
		case c.pad.answers <- a:
		default: // an answer nobody asked for
			return true, fmt.Errorf("client: unexpected PADDING_NEGOTIATED")
		}
		return true, nil
	}
	return false, nil
}

// stopPadding stops the client's halves. mu is held.
func (c *Circuit) stopPadding() {
	for _, hf := range c.pad.halves {
		if hf != nil {
			hf.Stop()
		}
	}
}

// PaddingCounts are the DROP cells the client's halves sent and the
// DROP cells the circuit received from its hops.
func (c *Circuit) PaddingCounts() (sent, received uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pad.sent, c.pad.received
}

// frontTimeout bounds the wait for a hop's answer to a FRONT machine.
const frontTimeout = 10 * time.Second

// startFront starts a FRONT machine with the middle hop of c. The wait
// for the hop's answer runs beside the circuit, counted with the
// payments that shutdown waits for; a refusal leaves the circuit as it
// is.
func (m *CircuitManager) startFront(c *Circuit) {
	machine := padding.Front(padding.NewRand(), *m.cfg.Front)
	m.payments.Add(1)
	go func() {
		defer m.payments.Done()
		ctx, cancel := context.WithTimeout(context.Background(), frontTimeout)
		defer cancel()
		if err := c.Pad(ctx, 1, 0, machine); err != nil {
			m.cfg.Logger.Debug("padding machine refused", "err", err)
		}
	}()
}
