package circuit

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"testing"
	"time"
)

// testTime is the clock of the package's tests and vectors: the client's
// builds are made at it and the relays judge creates by it.
var testTime = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

func testClock() time.Time { return testTime }

// detRand is the deterministic randomness of tests and vectors:
// block i = SHA-256(label || uint64be(i)), concatenated.
type detRand struct {
	label string
	ctr   uint64
	buf   []byte
}

func newDetRand(label string) *detRand { return &detRand{label: label} }

func (r *detRand) Read(p []byte) (int, error) {
	for n := 0; n < len(p); {
		if len(r.buf) == 0 {
			h := sha256.Sum256(binary.BigEndian.AppendUint64([]byte(r.label), r.ctr))
			r.ctr++
			r.buf = h[:]
		}
		c := copy(p[n:], r.buf)
		r.buf = r.buf[c:]
		n += c
	}
	return len(p), nil
}

// testNet is a chain of relays in memory.
type testNet struct {
	relays []*Responder
	specs  []HopSpec
}

func newTestNet(t testing.TB, n int) *testNet {
	t.Helper()
	tn := &testNet{}
	for i := 0; i < n; i++ {
		k, err := GenerateOnionKey(newDetRand(fmt.Sprintf("onion-key-%d", i)))
		if err != nil {
			t.Fatal(err)
		}
		r, err := NewResponder(ResponderConfig{Now: testClock, Rand: newDetRand(fmt.Sprintf("relay-%d", i))}, []OnionKey{k})
		if err != nil {
			t.Fatal(err)
		}
		tn.relays = append(tn.relays, r)
		tn.specs = append(tn.specs, HopSpec{PeerID: peerID(i), OnionKey: k.Public})
	}
	return tn
}

// peerID is a fake libp2p peer ID of the usual Ed25519 length (38 bytes).
func peerID(i int) []byte {
	id := make([]byte, 38)
	copy(id, fmt.Sprintf("peer-%d", i))
	return id
}

// builtCircuit is a client circuit and the relay circuits along it.
type builtCircuit struct {
	client *ClientCircuit
	relays []*RelayCircuit
	// creates[i] is the CREATE payload hop i received; createds[i] the
	// CREATED payload hop i sent back.
	creates, createds [][]byte
}

// create runs a one-round-trip build through the chain without finishing it.
func (tn *testNet) create(t testing.TB, rnd *detRand) (*Build, *builtCircuit) {
	t.Helper()
	b, p, err := NewBuild(rnd, testTime, tn.specs)
	if err != nil {
		t.Fatal(err)
	}
	bc := &builtCircuit{}
	var acts []Action
	for i, r := range tn.relays {
		bc.creates = append(bc.creates, p)
		rc, a, err := r.Create(p)
		if err != nil {
			t.Fatalf("hop %d create: %v", i, err)
		}
		bc.relays = append(bc.relays, rc)
		acts = append(acts, a)
		p = a.Payload
	}
	bc.createds = make([][]byte, len(tn.relays))
	created := acts[len(acts)-1].Payload
	bc.createds[len(acts)-1] = created
	for i := len(acts) - 2; i >= 0; i-- {
		a, err := bc.relays[i].HandleCreated(created)
		if err != nil {
			t.Fatalf("hop %d created: %v", i, err)
		}
		created = a.Payload
		bc.createds[i] = created
	}
	return b, bc
}

// build runs a full one-round-trip build.
func (tn *testNet) build(t testing.TB, rnd *detRand) *builtCircuit {
	t.Helper()
	b, bc := tn.create(t, rnd)
	c, err := b.Finish(bc.createds[0])
	if err != nil {
		t.Fatal(err)
	}
	bc.client = c
	return bc
}

// forward carries a forward payload along the relays until it is delivered.
func (bc *builtCircuit) forward(cmd Command, p []byte) (int, Action, error) {
	for i, rc := range bc.relays {
		a, err := rc.HandleForward(cmd, p)
		if err != nil || a.Kind != ActForward || a.Command == CmdCreate {
			return i, a, err
		}
		p = a.Payload
	}
	return -1, Action{}, fmt.Errorf("ran off the end")
}

// backward originates rc at hop and carries it to the client.
func (bc *builtCircuit) backward(hop int, rc RelayCell) (int, RelayCell, error) {
	p, err := bc.relays[hop].Originate(rc)
	if err != nil {
		return 0, RelayCell{}, err
	}
	for i := hop - 1; i >= 0; i-- {
		a, err := bc.relays[i].HandleBackward(p)
		if err != nil {
			return 0, RelayCell{}, err
		}
		p = a.Payload
	}
	return bc.client.Open(p)
}
