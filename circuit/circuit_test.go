package circuit

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestBuildAndRoundTrip(t *testing.T) {
	for _, n := range []int{1, 2, 3, 5, 8} {
		t.Run(fmt.Sprintf("%d-hops", n), func(t *testing.T) {
			tn := newTestNet(t, n)
			bc := tn.build(t, newDetRand("client"))
			if bc.client.Len() != n {
				t.Fatalf("client has %d hops", bc.client.Len())
			}
			for i := 0; i < n-1; i++ {
				if !bytes.Equal(bc.relays[i].Next(), tn.specs[i+1].PeerID) {
					t.Errorf("hop %d next = %x", i, bc.relays[i].Next())
				}
			}
			if bc.relays[n-1].Next() != nil {
				t.Errorf("last hop has a next hop")
			}
			roundTripEveryHop(t, bc, n)
		})
	}
}

// roundTripEveryHop sends a DATA cell to each hop and one back from each.
func roundTripEveryHop(t *testing.T, bc *builtCircuit, n int) {
	t.Helper()
	for round := 0; round < 3; round++ {
		for hop := 0; hop < n; hop++ {
			body := []byte(fmt.Sprintf("to hop %d round %d", hop, round))
			p, err := bc.client.Seal(hop, RelayCell{Command: RelayData, StreamID: 7, Body: body})
			if err != nil {
				t.Fatal(err)
			}
			at, a, err := bc.forward(CmdRelay, p)
			if err != nil || at != hop || a.Kind != ActDeliver || !bytes.Equal(a.Cell.Body, body) {
				t.Fatalf("to hop %d: delivered at %d, %+v, %v", hop, at, a.Cell, err)
			}
			from, rc, err := bc.backward(hop, RelayCell{Command: RelayData, StreamID: 7, Body: body})
			if err != nil || from != hop || !bytes.Equal(rc.Body, body) {
				t.Fatalf("from hop %d: got hop %d, %+v, %v", hop, from, rc, err)
			}
		}
	}
}

func TestCreateSizesConstant(t *testing.T) {
	for n := 1; n <= MaxHops; n++ {
		tn := newTestNet(t, n)
		bc := tn.build(t, newDetRand(fmt.Sprintf("sizes-%d", n)))
		for i := 0; i < n; i++ {
			c, d := bc.creates[i], bc.createds[i]
			if len(c) != PayloadLen || len(d) != PayloadLen {
				t.Fatalf("n=%d hop %d: create %d created %d bytes", n, i, len(c), len(d))
			}
			if !allZero(c[CreateLen:]) || !allZero(d[CreatedLen:]) {
				t.Fatalf("n=%d hop %d: bytes beyond the fixed create/created length", n, i)
			}
			// The onion tail must look random at every hop: no zero slot
			// would tell a relay how many hops follow it.
			onion := c[2:CreateLen]
			for s := 0; s < MaxHops; s++ {
				if allZero(onion[s*SlotLen : (s+1)*SlotLen]) {
					t.Fatalf("n=%d hop %d: slot %d is zero", n, i, s)
				}
			}
		}
	}
}

func TestTamperedRelayCell(t *testing.T) {
	tn := newTestNet(t, 3)
	for hop := 0; hop < 3; hop++ {
		bc := tn.build(t, newDetRand(fmt.Sprintf("tamper-%d", hop)))
		p, err := bc.client.Seal(hop, RelayCell{Command: RelayData, StreamID: 1, Body: []byte("x")})
		if err != nil {
			t.Fatal(err)
		}
		p[RelayHeaderLen+100] ^= 1
		at, a, err := bc.forward(CmdRelay, p)
		if a.Kind == ActDeliver {
			t.Fatalf("hop %d: tampered cell delivered at %d", hop, at)
		}
		if !errors.Is(err, ErrUnrecognized) || at != 2 {
			t.Fatalf("hop %d: want ErrUnrecognized at the last hop, got %v at %d", hop, err, at)
		}
		if DestroyReasonFor(err) != DestroyUnrecognized {
			t.Fatalf("destroy reason %v", DestroyReasonFor(err))
		}
	}
}

func TestTamperedBackwardCell(t *testing.T) {
	tn := newTestNet(t, 3)
	bc := tn.build(t, newDetRand("tamper-back"))
	p, err := bc.relays[2].Originate(RelayCell{Command: RelayData, StreamID: 1, Body: []byte("x")})
	if err != nil {
		t.Fatal(err)
	}
	p[50] ^= 0x80
	for i := 1; i >= 0; i-- {
		a, _ := bc.relays[i].HandleBackward(p)
		p = a.Payload
	}
	if _, _, err := bc.client.Open(p); !errors.Is(err, ErrUnrecognized) {
		t.Fatalf("want ErrUnrecognized, got %v", err)
	}
}

func TestTamperedCreate(t *testing.T) {
	tn := newTestNet(t, 3)
	// Flip one bit in each slot: the first hop's AEAD covers the whole onion.
	for s := 0; s < MaxHops; s++ {
		_, p, err := NewBuild(newDetRand(fmt.Sprint("tc", s)), testTime, tn.specs)
		if err != nil {
			t.Fatal(err)
		}
		p[2+s*SlotLen+40] ^= 1
		if _, _, err := tn.relays[0].Create(p); !errors.Is(err, ErrHandshake) {
			t.Fatalf("slot %d: want ErrHandshake, got %v", s, err)
		}
	}
}

func TestTamperedCreated(t *testing.T) {
	tn := newTestNet(t, 3)
	b, bc := tn.create(t, newDetRand("tampered-created"))
	d := append([]byte(nil), bc.createds[0]...)
	d[2+ReplySlotLen+5] ^= 1 // inside hop 2's msg2 as blinded by hop 1
	if _, err := b.Finish(d); !errors.Is(err, ErrHandshake) {
		t.Fatalf("want ErrHandshake, got %v", err)
	}
}

func TestReplayedCreate(t *testing.T) {
	tn := newTestNet(t, 1)
	_, p, err := NewBuild(newDetRand("replay"), testTime, tn.specs)
	if err != nil {
		t.Fatal(err)
	}
	q := append([]byte(nil), p...)
	if _, _, err := tn.relays[0].Create(p); err != nil {
		t.Fatal(err)
	}
	_, _, err = tn.relays[0].Create(q)
	if !errors.Is(err, ErrReplay) || DestroyReasonFor(err) != DestroyReplay {
		t.Fatalf("want ErrReplay, got %v", err)
	}
}

// A relay refuses a create made by a clock more than MaxCreateSkew from
// its own, and a replay of an accepted create once its window has passed,
// with the same key still answered: by its time, with no cache entry left.
func TestCreateClock(t *testing.T) {
	k := mustKey(t, "clock")
	now := testTime
	r, err := NewResponder(ResponderConfig{Now: func() time.Time { return now }}, []OnionKey{k})
	if err != nil {
		t.Fatal(err)
	}
	for _, off := range []time.Duration{-MaxCreateSkew - time.Minute, MaxCreateSkew + time.Minute} {
		_, p, _ := NewBuild(newDetRand(fmt.Sprint("clock", off)), testTime.Add(off), []HopSpec{{OnionKey: k.Public}})
		_, _, err := r.Create(p)
		if !errors.Is(err, ErrClockSkew) || DestroyReasonFor(err) != DestroyClockSkew {
			t.Fatalf("clock %v off: %v", off, err)
		}
	}
	var accepted [][]byte
	for _, off := range []time.Duration{-MaxCreateSkew, 0, MaxCreateSkew} {
		_, p, _ := NewBuild(newDetRand(fmt.Sprint("clock-ok", off)), testTime.Add(off), []HopSpec{{OnionKey: k.Public}})
		accepted = append(accepted, append([]byte(nil), p...))
		if _, _, err := r.Create(p); err != nil {
			t.Fatalf("clock %v off: %v", off, err)
		}
	}
	now = testTime.Add(2*MaxCreateSkew + 2*time.Minute)
	for i, p := range accepted {
		if _, _, err := r.Create(p); !errors.Is(err, ErrClockSkew) {
			t.Fatalf("replay %d after its window: %v", i, err)
		}
	}
	if n := r.replay.Len(); n != 0 {
		t.Fatalf("%d entries held after the window", n)
	}
}

func TestOnionKeyRotation(t *testing.T) {
	tn := newTestNet(t, 1)
	old := tn.specs[0].OnionKey
	oldKey, _ := GenerateOnionKey(newDetRand("onion-key-0"))
	newKey, _ := GenerateOnionKey(newDetRand("rotated"))
	r := tn.relays[0]
	if err := r.SetOnionKeys([]OnionKey{newKey, oldKey}); err != nil {
		t.Fatal(err)
	}
	for _, pk := range [][32]byte{old, newKey.Public} {
		_, p, _ := NewBuild(newDetRand(fmt.Sprintf("rot-%x", pk[:4])), testTime, []HopSpec{{OnionKey: pk}})
		if _, _, err := r.Create(p); err != nil {
			t.Fatalf("key %x: %v", pk[:4], err)
		}
	}
	if err := r.SetOnionKeys([]OnionKey{newKey}); err != nil {
		t.Fatal(err)
	}
	_, p, _ := NewBuild(newDetRand("rot-retired"), testTime, []HopSpec{{OnionKey: old}})
	if _, _, err := r.Create(p); !errors.Is(err, ErrHandshake) {
		t.Fatalf("retired key: want ErrHandshake, got %v", err)
	}
	if err := r.SetOnionKeys(nil); !errors.Is(err, ErrNoOnionKeys) {
		t.Fatalf("no keys: %v", err)
	}
}

func TestTelescoping(t *testing.T) {
	for _, n := range []int{1, 3, 5, 8} {
		t.Run(fmt.Sprintf("%d-hops", n), func(t *testing.T) {
			tn := newTestNet(t, n)
			bc := telescope(t, tn, newDetRand("telescope"))
			roundTripEveryHop(t, bc, n)
		})
	}
}

// telescope builds hop 0 with a one-hop create, then extends hop by hop.
func telescope(t *testing.T, tn *testNet, rnd *detRand) *builtCircuit {
	t.Helper()
	one := &testNet{relays: tn.relays[:1], specs: tn.specs[:1]}
	bc := one.build(t, rnd)
	for k := 1; k < len(tn.relays); k++ {
		x, p, err := bc.client.Extend(rnd, testTime, tn.specs[k])
		if err != nil {
			t.Fatal(err)
		}
		at, a, err := bc.forward(CmdRelay, p)
		if err != nil || at != k-1 || a.Command != CmdCreate || !bytes.Equal(a.Next, tn.specs[k].PeerID) {
			t.Fatalf("extend to %d: at %d %v %v", k, at, a.Command, err)
		}
		if len(a.Payload) != PayloadLen || !allZero(a.Payload[CreateLen:]) {
			t.Fatal("telescoping CREATE differs in size")
		}
		rc, ca, err := tn.relays[k].Create(a.Payload)
		if err != nil {
			t.Fatal(err)
		}
		bc.relays = append(bc.relays, rc)
		ea, err := bc.relays[k-1].HandleCreated(ca.Payload)
		if err != nil || ea.Command != CmdRelay {
			t.Fatalf("extended: %v", err)
		}
		p = ea.Payload
		for i := k - 2; i >= 0; i-- {
			a, err := bc.relays[i].HandleBackward(p)
			if err != nil {
				t.Fatal(err)
			}
			p = a.Payload
		}
		from, cell, err := bc.client.Open(p)
		if err != nil || from != k-1 || cell.Command != RelayExtended {
			t.Fatalf("open extended: %v from %d %v", err, from, cell.Command)
		}
		if err := bc.client.FinishExtend(x, cell.Body); err != nil {
			t.Fatal(err)
		}
	}
	return bc
}

func TestEarlyData(t *testing.T) {
	tn := newTestNet(t, 3)
	b, bc := tn.create(t, newDetRand("early"))
	begin, _ := Begin{Addr: Address{Host: "example.com"}, Port: 443}.MarshalBinary()
	cells := []RelayCell{
		{Command: RelayBegin, StreamID: 1, Body: begin},
		{Command: RelayData, StreamID: 1, Body: []byte("GET / HTTP/1.1\r\n\r\n")},
	}
	for _, rc := range cells {
		p, err := b.SealEarly(2, rc)
		if err != nil {
			t.Fatal(err)
		}
		at, a, err := bc.forward(CmdRelayEarly, p)
		if err != nil || at != 2 || a.Kind != ActDeliver || a.Cell.Command != rc.Command {
			t.Fatalf("early %v: at %d %v", rc.Command, at, err)
		}
	}
	c, err := b.Finish(bc.createds[0])
	if err != nil {
		t.Fatal(err)
	}
	bc.client = c
	roundTripEveryHop(t, bc, 3)
}

func TestEarlyLimit(t *testing.T) {
	tn := newTestNet(t, 1)
	b, bc := tn.create(t, newDetRand("early-limit"))
	for i := 0; i <= DefaultMaxEarlyCells; i++ {
		p, _ := b.SealEarly(0, RelayCell{Command: RelayDrop})
		_, err := bc.relays[0].HandleForward(CmdRelayEarly, p)
		if i < DefaultMaxEarlyCells && err != nil {
			t.Fatal(err)
		}
		if i == DefaultMaxEarlyCells && !errors.Is(err, ErrEarlyLimit) {
			t.Fatalf("want ErrEarlyLimit, got %v", err)
		}
	}
}

func TestUnexpectedCells(t *testing.T) {
	tn := newTestNet(t, 2)
	_, bc := tn.create(t, newDetRand("unexpected"))
	_, cp, _ := NewBuild(newDetRand("unexpected-2"), testTime, tn.specs)
	mid, _, err := tn.relays[0].Create(cp)
	if err != nil {
		t.Fatal(err)
	}
	p := make([]byte, PayloadLen)
	if _, err := mid.HandleForward(CmdRelay, p); !errors.Is(err, ErrUnexpectedCell) {
		t.Errorf("RELAY before CREATED: %v", err)
	}
	if _, err := mid.HandleBackward(p); !errors.Is(err, ErrUnexpectedCell) {
		t.Errorf("backward before CREATED: %v", err)
	}
	if _, err := bc.relays[1].HandleCreated(bc.createds[1]); !errors.Is(err, ErrUnexpectedCell) {
		t.Errorf("CREATED at last hop: %v", err)
	}
	if _, err := mid.HandleForward(CmdCreate, p); !errors.Is(err, ErrUnexpectedCell) {
		t.Errorf("CREATE as relay: %v", err)
	}
	if _, err := mid.HandleForward(CmdRelayEarly, p[:10]); !errors.Is(err, ErrCellTruncated) {
		t.Errorf("short payload: %v", err)
	}
}

func TestPathLength(t *testing.T) {
	tn := newTestNet(t, MaxHops+1)
	for _, n := range []int{0, MaxHops + 1} {
		if _, _, err := NewBuild(newDetRand("len"), testTime, tn.specs[:n]); !errors.Is(err, ErrPathLength) {
			t.Errorf("%d hops: %v", n, err)
		}
	}
	bad := append([]HopSpec(nil), tn.specs[:2]...)
	bad[1].PeerID = make([]byte, MaxPeerIDLen+1)
	if _, _, err := NewBuild(newDetRand("len"), testTime, bad); !errors.Is(err, ErrBadPeerID) {
		t.Errorf("long peer ID: %v", err)
	}
}

func TestWrongOnionKey(t *testing.T) {
	tn := newTestNet(t, 2)
	specs := []HopSpec{{OnionKey: tn.specs[1].OnionKey}}
	_, p, _ := NewBuild(newDetRand("wrong"), testTime, specs)
	_, _, err := tn.relays[0].Create(p)
	if !errors.Is(err, ErrHandshake) || DestroyReasonFor(err) != DestroyHandshake {
		t.Fatalf("want ErrHandshake, got %v", err)
	}
}

func TestLayerExhausted(t *testing.T) {
	bc := newTestNet(t, 2).build(t, newDetRand("exhausted"))
	bc.client.fwd[0].n = maxLayerCells - 1
	bc.relays[0].fwd.n = maxLayerCells - 1
	p, err := bc.client.Seal(0, RelayCell{Command: RelayDrop})
	if err != nil {
		t.Fatal(err)
	}
	if a, err := bc.relays[0].HandleForward(CmdRelay, p); err != nil || a.Kind != ActDeliver {
		t.Fatalf("last cell: %v", err)
	}
	if _, err := bc.client.Seal(1, RelayCell{Command: RelayDrop}); !errors.Is(err, ErrLayerExhausted) {
		t.Fatalf("client: %v", err)
	}
	_, err = bc.relays[0].HandleForward(CmdRelay, make([]byte, PayloadLen))
	if !errors.Is(err, ErrLayerExhausted) || DestroyReasonFor(err) != DestroyResourceLimit {
		t.Fatalf("relay: %v", err)
	}
	bc.relays[0].back.n = maxLayerCells
	if _, err := bc.relays[0].Originate(RelayCell{Command: RelayDrop}); !errors.Is(err, ErrLayerExhausted) {
		t.Fatalf("originate: %v", err)
	}
}

// TestTagsForSendme checks that the tag a sender gets back is the tag the
// receiver sees, in both directions (authenticated SENDME, spec §5.6).
func TestTagsForSendme(t *testing.T) {
	bc := newTestNet(t, 3).build(t, newDetRand("tags"))
	p := make([]byte, PayloadLen)
	sent, err := bc.client.SealInto(p, 2, RelayCell{Command: RelayData, StreamID: 4, Body: []byte("x")})
	if err != nil {
		t.Fatal(err)
	}
	_, a, err := bc.forward(CmdRelay, p)
	if err != nil || a.Cell.Tag != sent || sent == ([TagLen]byte{}) {
		t.Fatalf("forward tag %x, sent %x: %v", a.Cell.Tag, sent, err)
	}
	q := make([]byte, PayloadLen)
	sent, err = bc.relays[2].OriginateInto(q, RelayCell{Command: RelayData, StreamID: 4})
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i >= 0; i-- {
		bc.relays[i].HandleBackward(q)
	}
	_, rc, err := bc.client.Open(q)
	if err != nil || rc.Tag != sent {
		t.Fatalf("backward tag %x, sent %x: %v", rc.Tag, sent, err)
	}
}

// TestExtendDoesNotAliasCell checks that the next hop a relay learns from
// an EXTEND survives reuse of the cell buffer it came in.
func TestExtendDoesNotAliasCell(t *testing.T) {
	tn := newTestNet(t, 2)
	bc := (&testNet{relays: tn.relays[:1], specs: tn.specs[:1]}).build(t, newDetRand("alias"))
	_, p, err := bc.client.Extend(newDetRand("alias-x"), testTime, tn.specs[1])
	if err != nil {
		t.Fatal(err)
	}
	a, err := bc.relays[0].HandleForward(CmdRelay, p)
	if err != nil {
		t.Fatal(err)
	}
	clear(p)
	if !bytes.Equal(a.Next, tn.specs[1].PeerID) || !allZero(a.Payload[CreateLen:]) || allZero(a.Payload[:CreateLen]) {
		t.Fatal("EXTEND result aliases the cell buffer")
	}
	if _, _, err := tn.relays[1].Create(a.Payload); err != nil {
		t.Fatal(err)
	}
	a2, err := bc.relays[0].HandleCreated(createdPayload(make([]byte, ReplyLen)))
	if err != nil || a2.Kind != ActBackward {
		t.Fatalf("created: %v", err)
	}
	if !bytes.Equal(bc.relays[0].Next(), tn.specs[1].PeerID) {
		t.Fatal("next hop changed with the cell buffer")
	}
}
