package circuit

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
)

// layerPair returns two layers with the same keys: one end's and the other's.
func layerPair(label string) (*layer, *layer) {
	k := parseDirKeys(readN(newDetRand(label), dirKeysLen))
	a, b := newLayer(k), newLayer(k)
	return &a, &b
}

func randomCell(label string) []byte { return readN(newDetRand(label), PayloadLen) }

func TestLayerInverse(t *testing.T) {
	client, relay := layerPair("inverse")
	for i := range 5 {
		want := randomCell(fmt.Sprint("cell", i))
		p := append([]byte(nil), want...)
		client.unmix(p)
		if bytes.Equal(p, want) {
			t.Fatal("unmix left the cell unchanged")
		}
		relay.mix(p)
		if !bytes.Equal(p, want) {
			t.Fatalf("cell %d: mix does not invert unmix", i)
		}
		if client.t != relay.t {
			t.Fatalf("cell %d: tweak chains diverged", i)
		}
	}
}

// TestLayerDiffusion: one flipped bit anywhere in a cell turns the cell,
// and every later cell of the layer, into unrelated bytes.
func TestLayerDiffusion(t *testing.T) {
	for _, bit := range []int{0, 7, 8*TagLen - 1, 8 * TagLen, 8*TagLen + 9, 8 * 700, 8*PayloadLen - 1} {
		t.Run(fmt.Sprint("bit ", bit), func(t *testing.T) {
			_, honest := layerPair("diffusion")
			_, tampered := layerPair("diffusion")
			for i := range 3 {
				p := randomCell(fmt.Sprint("diffusion cell", i))
				q := append([]byte(nil), p...)
				if i == 0 {
					q[bit/8] ^= 1 << (bit % 8)
				}
				honest.mix(p)
				tampered.mix(q)
				if d := differing(p, q); d < PayloadLen*9/10 {
					t.Fatalf("cell %d after the flip: outputs differ in only %d bytes", i, d)
				}
			}
		})
	}
}

// TestLayerRecognition: the addressee sees its check value only on cells
// sealed to it, and the value moves on after each.
func TestLayerRecognition(t *testing.T) {
	client, relay := layerPair("recognise")
	for i := range 3 {
		p := make([]byte, PayloadLen)
		p[relayCmdOff] = byte(RelayDrop)
		sent := client.sealFor(p)
		ok, got := relay.open(p)
		if !ok || got != sent {
			t.Fatalf("cell %d not recognised (tag %x, sent %x)", i, got, sent)
		}
		if client.want != relay.want {
			t.Fatalf("cell %d: check values diverged", i)
		}
	}
	q := randomCell("not sealed")
	if ok, _ := relay.open(q); ok {
		t.Fatal("a random cell was recognised")
	}
}

// TestBackwardTagging: a malicious exit cannot pass a marker to a colluding
// guard through an honest middle: what the guard sees changes entirely.
func TestBackwardTagging(t *testing.T) {
	view := func(marker byte) []byte {
		bc := newTestNet(t, 3).build(t, newDetRand("back-tag"))
		p, err := bc.relays[2].Originate(RelayCell{Command: RelayData, StreamID: 1, Body: secretBody})
		if err != nil {
			t.Fatal(err)
		}
		p[markerOff] ^= marker
		a, err := bc.relays[1].HandleBackward(p)
		if err != nil {
			t.Fatal(err)
		}
		return append([]byte(nil), a.Payload...)
	}
	if d := differing(view(0), view(0x5a)); d < PayloadLen*9/10 {
		t.Fatalf("the guard's view differs in only %d bytes: the marker shows", d)
	}
	bc := newTestNet(t, 3).build(t, newDetRand("back-tag"))
	p, _ := bc.relays[2].Originate(RelayCell{Command: RelayData, StreamID: 1, Body: secretBody})
	p[markerOff] ^= 0x5a
	for i := 1; i >= 0; i-- {
		a, _ := bc.relays[i].HandleBackward(p)
		p = a.Payload
	}
	// The client, the addressee of every backward cell, destroys the
	// circuit on the first cell no hop recognises (§6.6).
	if _, _, err := bc.client.Open(p); !errors.Is(err, ErrUnrecognized) {
		t.Fatalf("tagged backward cell: want ErrUnrecognized, got %v", err)
	}
	if _, _, err := bc.backward(2, RelayCell{Command: RelayDrop}); !errors.Is(err, ErrUnrecognized) {
		t.Fatalf("later backward cell from the exit: want ErrUnrecognized, got %v", err)
	}
}

// FuzzLayer: mix inverts unmix for any cell, and a flipped bit anywhere
// garbles the whole cell.
func FuzzLayer(f *testing.F) {
	f.Add(randomCell("fuzz seed"), uint16(0))
	f.Add(make([]byte, PayloadLen), uint16(8*PayloadLen-1))
	f.Fuzz(func(t *testing.T, in []byte, bit uint16) {
		if len(in) != PayloadLen {
			return
		}
		client, relay := layerPair("fuzz")
		_, other := layerPair("fuzz")
		p := append([]byte(nil), in...)
		client.unmix(p)
		q := append([]byte(nil), p...)
		relay.mix(p)
		if !bytes.Equal(p, in) {
			t.Fatal("mix does not invert unmix")
		}
		b := int(bit) % (8 * PayloadLen)
		q[b/8] ^= 1 << (b % 8)
		other.mix(q)
		if d := differing(p, q); d < PayloadLen/2 {
			t.Fatalf("flipped bit %d: outputs differ in %d bytes", b, d)
		}
	})
}

// FuzzRelayForward: whatever payload reaches a hop, it is never delivered
// unless it was sealed to that hop; the last hop refuses it.
func FuzzRelayForward(f *testing.F) {
	var v vectorFile
	if err := loadJSON(vectorPath, &v); err == nil {
		for _, c := range v.Forward {
			for _, w := range c.Wire {
				f.Add([]byte(w))
			}
		}
	}
	f.Add(make([]byte, PayloadLen))
	f.Fuzz(func(t *testing.T, in []byte) {
		bc := newTestNet(t, 3).build(t, newDetRand("fuzz-forward"))
		if len(in) != PayloadLen {
			if _, err := bc.relays[0].HandleForward(CmdRelay, in); err == nil {
				t.Fatalf("accepted a payload of %d bytes", len(in))
			}
			return
		}
		at, a, err := bc.forward(CmdRelay, append([]byte(nil), in...))
		if a.Kind == ActDeliver || !errors.Is(err, ErrUnrecognized) || at != 2 {
			t.Fatalf("forged cell: %v at hop %d: %v", a.Kind, at, err)
		}
	})
}
