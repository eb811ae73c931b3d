package circuit

import (
	"bytes"
	"encoding"
	"net/netip"
	"testing"
)

// fuzzRoundTrip checks that whatever parse accepts marshals back to the
// same bytes (every codec here is canonical).
func fuzzRoundTrip[T encoding.BinaryMarshaler](t *testing.T, in []byte, parse func([]byte) (T, error)) {
	m, err := parse(in)
	if err != nil {
		return
	}
	out, err := m.MarshalBinary()
	if err != nil {
		t.Fatalf("accepted %x but cannot marshal: %v", in, err)
	}
	if !bytes.Equal(in, out) {
		t.Fatalf("round trip %x → %x", in, out)
	}
}

func addBodies[T encoding.BinaryMarshaler](f *testing.F, ms ...T) {
	for _, m := range ms {
		if b, err := m.MarshalBinary(); err == nil {
			f.Add(b)
		}
	}
}

func FuzzParseCell(f *testing.F) {
	c, _ := Cell{CircID: 5, Command: CmdCreate, Payload: []byte{0, 1}}.MarshalBinary()
	f.Add(c)
	f.Add(c[:10])
	f.Fuzz(func(t *testing.T, in []byte) {
		fuzzRoundTrip(t, in, func(b []byte) (Cell, error) { return ParseCell(b) })
	})
}

// destroyCodec adapts ParseDestroy to fuzzRoundTrip.
type destroyCodec DestroyReason

func (d destroyCodec) MarshalBinary() ([]byte, error) { return DestroyPayload(DestroyReason(d)), nil }

func FuzzParseDestroy(f *testing.F) {
	f.Add(DestroyPayload(DestroyTimeout))
	f.Fuzz(func(t *testing.T, in []byte) {
		fuzzRoundTrip(t, in, func(b []byte) (destroyCodec, error) {
			r, err := ParseDestroy(b)
			return destroyCodec(r), err
		})
	})
}

// relayCodec adapts the relay plaintext codec to fuzzRoundTrip.
type relayCodec RelayCell

func (r relayCodec) MarshalBinary() ([]byte, error) { return EncodeRelayPlaintext(RelayCell(r)) }

func FuzzDecodeRelay(f *testing.F) {
	p, _ := EncodeRelayPlaintext(RelayCell{Command: RelayData, StreamID: 1, Body: []byte("x")})
	f.Add(p)
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) >= RelayHeaderLen {
			clear(in[:relayCmdOff]) // recognized and tag are not part of the codec
		}
		fuzzRoundTrip(t, in, func(b []byte) (relayCodec, error) {
			rc, err := DecodeRelayPlaintext(b)
			return relayCodec(rc), err
		})
	})
}

func FuzzParseBegin(f *testing.F) {
	addBodies(f, Begin{Addr: Address{Host: "example.com"}, Port: 443, Flags: BeginIPv6OK},
		Begin{Addr: Address{IP: netip.MustParseAddr("2001:db8::1")}, Port: 1})
	f.Fuzz(func(t *testing.T, in []byte) { fuzzRoundTrip(t, in, ParseBegin) })
}

func FuzzParseConnected(f *testing.F) {
	addBodies(f, Connected{}, Connected{IP: netip.MustParseAddr("192.0.2.1"), TTL: 9})
	f.Fuzz(func(t *testing.T, in []byte) { fuzzRoundTrip(t, in, ParseConnected) })
}

func FuzzParseEnd(f *testing.F) {
	addBodies(f, End{Reason: EndDone})
	f.Fuzz(func(t *testing.T, in []byte) { fuzzRoundTrip(t, in, ParseEnd) })
}

func FuzzParseResolve(f *testing.F) {
	addBodies(f, Resolve{Host: "example.com"})
	f.Fuzz(func(t *testing.T, in []byte) { fuzzRoundTrip(t, in, ParseResolve) })
}

func FuzzParseResolved(f *testing.F) {
	addBodies(f, Resolved{Answers: []Answer{{IP: netip.MustParseAddr("192.0.2.1"), TTL: 1}}}, Resolved{Status: ResolveFailed})
	f.Fuzz(func(t *testing.T, in []byte) { fuzzRoundTrip(t, in, ParseResolved) })
}

func FuzzParseSendme(f *testing.F) {
	addBodies(f, Sendme{Tag: [TagLen]byte{1}})
	f.Fuzz(func(t *testing.T, in []byte) { fuzzRoundTrip(t, in, ParseSendme) })
}

func FuzzParseExtend(f *testing.F) {
	addBodies(f, Extend{Next: peerID(1), Create: createPayload(make([]byte, OnionLen))[:CreateLen]})
	f.Fuzz(func(t *testing.T, in []byte) { fuzzRoundTrip(t, in, ParseExtend) })
}

func FuzzParseExtended(f *testing.F) {
	addBodies(f, Extended{Created: createdPayload(make([]byte, ReplyLen))[:CreatedLen]})
	f.Fuzz(func(t *testing.T, in []byte) { fuzzRoundTrip(t, in, ParseExtended) })
}

// FuzzRelayCreate feeds arbitrary CREATE payloads (handshake first
// messages) to a relay: it must reject or accept without panicking, and
// an accepted create must yield a full-size CREATE or CREATED.
func FuzzRelayCreate(f *testing.F) {
	tn := newTestNet(f, 3)
	for i := 1; i <= 3; i++ {
		_, p, _ := NewBuild(newDetRand("fuzz"), testTime, tn.specs[:i])
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		r, _ := NewResponder(ResponderConfig{Now: testClock, Rand: newDetRand("fuzz-relay")}, []OnionKey{mustKey(t, "onion-key-0")})
		_, a, err := r.Create(in)
		if err == nil && len(a.Payload) != PayloadLen {
			t.Fatalf("accepted create gave %d bytes", len(a.Payload))
		}
	})
}

// FuzzFinish feeds arbitrary CREATED payloads (handshake second messages)
// to a client build.
func FuzzFinish(f *testing.F) {
	tn := newTestNet(f, 2)
	_, bc := tn.create(f, newDetRand("fuzz-finish"))
	f.Add(bc.createds[0])
	f.Fuzz(func(t *testing.T, in []byte) {
		b, _, err := NewBuild(newDetRand("fuzz-finish"), testTime, tn.specs)
		if err != nil {
			t.Fatal(err)
		}
		c, err := b.Finish(in)
		if err == nil && c.Len() != 2 {
			t.Fatalf("finished with %d hops", c.Len())
		}
	})
}

// FuzzSealDeliver round-trips arbitrary relay cells through a 3-hop
// circuit to an arbitrary hop.
func FuzzSealDeliver(f *testing.F) {
	f.Add(uint8(2), uint8(RelayData), uint16(1), []byte("hello"))
	f.Add(uint8(0), uint8(RelaySendme), uint16(0), []byte{1})
	f.Fuzz(func(t *testing.T, hop, cmd uint8, stream uint16, body []byte) {
		bc := newTestNet(t, 3).build(t, newDetRand("fuzz-seal"))
		h := int(hop % 3)
		rc := RelayCell{Command: RelayCommand(cmd), StreamID: stream, Body: body}
		p, err := bc.client.Seal(h, rc)
		if err != nil {
			return
		}
		at, a, err := bc.forward(CmdRelay, p)
		if rc.Command == RelayExtend {
			return // handled by the relay itself
		}
		if err != nil || at != h || a.Kind != ActDeliver || a.Cell.Command != rc.Command ||
			a.Cell.StreamID != stream || !bytes.Equal(a.Cell.Body, body) {
			t.Fatalf("sent %+v to %d, got %+v at %d: %v", rc, h, a.Cell, at, err)
		}
	})
}

func mustKey(t testing.TB, label string) OnionKey {
	k, err := GenerateOnionKey(newDetRand(label))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// routingCodec adapts the routing instructions (the Noise msg1 payload) to
// fuzzRoundTrip.
type routingCodec routing

func (r routingCodec) MarshalBinary() ([]byte, error) { return routing(r).marshal(), nil }

func FuzzParseRouting(f *testing.F) {
	f.Add(routing{kind: routeForward, next: peerID(1), seed: [seedLen]byte{1}}.marshal())
	f.Add(routing{kind: routeLast}.marshal())
	f.Fuzz(func(t *testing.T, in []byte) {
		fuzzRoundTrip(t, in, func(b []byte) (routingCodec, error) {
			r, err := parseRouting(b)
			return routingCodec(r), err
		})
	})
}

// FuzzBuildRoundTrip builds circuits of every length from arbitrary client
// randomness and peer IDs: the handshake messages must round-trip through
// the relays and the circuit must carry a cell to its last hop.
func FuzzBuildRoundTrip(f *testing.F) {
	f.Add(uint8(3), "seed", []byte("peer"))
	f.Add(uint8(8), "", make([]byte, MaxPeerIDLen))
	f.Fuzz(func(t *testing.T, n uint8, seed string, id []byte) {
		hops := int(n%MaxHops) + 1
		if len(id) == 0 || len(id) > MaxPeerIDLen {
			return
		}
		tn := newTestNet(t, hops)
		for i := range tn.specs {
			tn.specs[i].PeerID = id
		}
		bc := tn.build(t, newDetRand(seed))
		for i := 0; i+1 < hops; i++ {
			if !bytes.Equal(bc.relays[i].Next(), tn.specs[i+1].PeerID) {
				t.Fatalf("hop %d routes to %x", i, bc.relays[i].Next())
			}
		}
		p, _ := bc.client.Seal(hops-1, RelayCell{Command: RelayDrop})
		if at, a, err := bc.forward(CmdRelay, p); err != nil || at != hops-1 || a.Kind != ActDeliver {
			t.Fatalf("delivered at %d: %v", at, err)
		}
	})
}
