package circuit

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
)

// The tagging attack (specs/04-circuit.md §14.1): a malicious guard XORs
// a marker into a cell addressed to the exit, and a colluding exit looks for
// the marker and removes it, so that the two confirm they share the circuit
// and keep it alive (and kill, by tagging, every circuit whose exit is
// honest). Every run rebuilds the same circuit from the same deterministic
// keys, so the exit can compare what reaches it with and without a marker,
// as an attacker replaying the experiment on many circuits would.

const markerOff = 300 // inside the body of the relay cell

var secretBody = []byte("GET /secret HTTP/1.1\r\nHost: example.com\r\n\r\n")

type tagRun struct {
	bc     *builtCircuit
	exitIn []byte // what reached the exit from the middle
}

// runTagged sends one DATA cell to the exit of a 3-hop circuit; the guard
// XORs marker into it (nil: no marker) after its own layer.
func runTagged(t *testing.T, marker []byte) tagRun {
	t.Helper()
	bc := newTestNet(t, 3).build(t, newDetRand("tagging"))
	p, err := bc.client.Seal(2, RelayCell{Command: RelayData, StreamID: 1, Body: secretBody})
	if err != nil {
		t.Fatal(err)
	}
	a, err := bc.relays[0].HandleForward(CmdRelay, p)
	if err != nil || a.Kind != ActForward {
		t.Fatalf("guard: %v %v", a.Kind, err)
	}
	xorAt(a.Payload, marker)
	a, err = bc.relays[1].HandleForward(CmdRelay, a.Payload)
	if err != nil || a.Kind != ActForward {
		t.Fatalf("middle: %v %v", a.Kind, err)
	}
	return tagRun{bc: bc, exitIn: append([]byte(nil), a.Payload...)}
}

func xorAt(p, marker []byte) {
	for i, m := range marker {
		p[markerOff+i] ^= m
	}
}

// differing counts the bytes in which a and b differ.
func differing(a, b []byte) int {
	n := 0
	for i := range a {
		if a[i] != b[i] {
			n++
		}
	}
	return n
}

func TestTaggingAttackFails(t *testing.T) {
	m1 := bytes.Repeat([]byte{0x5a}, 32)
	m2 := bytes.Repeat([]byte{0xa5}, 32)
	clean := runTagged(t, nil)
	tagged1 := runTagged(t, m1)
	tagged2 := runTagged(t, m2)

	t.Run("marker invisible at the exit", func(t *testing.T) {
		// Against a malleable layer the three differ in the marker bytes
		// only. Here the whole cell must change, as random bytes would
		// (each byte equal with probability 1/256).
		for _, pair := range [][2][]byte{{clean.exitIn, tagged1.exitIn}, {tagged1.exitIn, tagged2.exitIn}} {
			if d := differing(pair[0], pair[1]); d < PayloadLen*9/10 {
				t.Fatalf("the exit's view of the cell differs in %d of %d bytes: the marker shows", d, PayloadLen)
			}
		}
	})

	t.Run("removing the marker does not restore the cell", func(t *testing.T) {
		r := runTagged(t, m1)
		p := append([]byte(nil), r.exitIn...)
		xorAt(p, m1)
		a, err := r.bc.relays[2].HandleForward(CmdRelay, p)
		if a.Kind == ActDeliver || bytes.Contains(p, secretBody) {
			t.Fatal("the colluding exit removed the marker and recovered the cell")
		}
		if !errors.Is(err, ErrUnrecognized) {
			t.Fatalf("want ErrUnrecognized, got %v", err)
		}
	})

	t.Run("the addressee destroys the circuit", func(t *testing.T) {
		r := runTagged(t, m1)
		_, err := r.bc.relays[2].HandleForward(CmdRelay, r.exitIn)
		if !errors.Is(err, ErrUnrecognized) || DestroyReasonFor(err) != DestroyUnrecognized {
			t.Fatalf("want the circuit destroyed as unrecognized, got %v", err)
		}
	})

	t.Run("every later cell is lost", func(t *testing.T) {
		// Whatever the colluding exit does with the tagged cell (here: it
		// removes the marker and keeps the circuit), no later cell of the
		// circuit reaches the exit or the middle intact.
		r := runTagged(t, m1)
		p := append([]byte(nil), r.exitIn...)
		xorAt(p, m1)
		r.bc.relays[2].HandleForward(CmdRelay, p)
		for i, hop := range []int{2, 1, 2} {
			q, err := r.bc.client.Seal(hop, RelayCell{Command: RelayData, StreamID: 1, Body: []byte(fmt.Sprint("later ", i))})
			if err != nil {
				t.Fatal(err)
			}
			at, a, err := r.bc.forward(CmdRelay, q)
			if a.Kind == ActDeliver {
				t.Fatalf("later cell %d to hop %d delivered at hop %d", i, hop, at)
			}
			if !errors.Is(err, ErrUnrecognized) || at != 2 {
				t.Fatalf("later cell %d: want ErrUnrecognized at the exit, got %v at %d", i, err, at)
			}
		}
	})
}
