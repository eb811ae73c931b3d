package circuit

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/crypto/curve25519"
)

var update = flag.Bool("update", false, "regenerate specs/vectors/circuit-*.json")

const (
	vectorPath          = "../specs/vectors/circuit-3hop.json"
	telescopeVectorPath = "../specs/vectors/circuit-telescope.json"
)

// hexBytes marshals as a lowercase hex string.
type hexBytes []byte

func (h hexBytes) MarshalText() ([]byte, error) { return []byte(hex.EncodeToString(h)), nil }
func (h *hexBytes) UnmarshalText(b []byte) error {
	v, err := hex.DecodeString(string(b))
	*h = v
	return err
}

type vectorFile struct {
	Description  string          `json:"description"`
	RandomSource string          `json:"random_source"`
	Clock        vectorClock     `json:"clock"`
	Constants    map[string]int  `json:"constants"`
	Relays       []vectorRelay   `json:"relays"`
	Client       vectorClient    `json:"client"`
	Forward      []vectorCell    `json:"forward_cells"`
	Backward     []vectorCell    `json:"backward_cells"`
	Early        vectorCell      `json:"early_cell"`
	Payloads     []vectorPayload `json:"payloads"`
}

// vectorClock is the time of a vector's builds, by the client's clock and
// the relays' alike, and the create minute the routing instructions carry.
type vectorClock struct {
	Time   string `json:"time"`
	Minute uint32 `json:"create_minute"`
}

func testVectorClock() vectorClock {
	return vectorClock{Time: testTime.Format(time.RFC3339), Minute: minuteOf(testTime)}
}

type vectorRelay struct {
	OnionKeyLabel     string        `json:"onion_key_label"`
	RandLabel         string        `json:"rand_label"`
	PeerID            hexBytes      `json:"peer_id"`
	OnionPrivate      hexBytes      `json:"onion_private"`
	OnionPublic       hexBytes      `json:"onion_public"`
	CreateReceived    hexBytes      `json:"create_payload_received"`
	Msg1              hexBytes      `json:"msg1"`
	Rest              hexBytes      `json:"rest"`
	Routing           hexBytes      `json:"routing_plaintext"`
	HeaderKey         hexBytes      `json:"header_key"`
	EphemeralPrivate  hexBytes      `json:"relay_ephemeral_private"`
	Msg2              hexBytes      `json:"msg2"`
	HandshakeHash     hexBytes      `json:"handshake_hash"`
	KeyIR             hexBytes      `json:"noise_key_initiator_to_responder"`
	KeyRI             hexBytes      `json:"noise_key_responder_to_initiator"`
	LayerKeys         hexBytes      `json:"layer_keys"`
	Forward           vectorDirKeys `json:"forward_layer"`
	Backward          vectorDirKeys `json:"backward_layer"`
	ReplyKey          hexBytes      `json:"reply_key"`
	EarlyKeys         hexBytes      `json:"early_keys"`
	CreateForwarded   hexBytes      `json:"create_payload_forwarded,omitempty"`
	CreatedSent       hexBytes      `json:"created_payload_sent"`
	CreatedFromNextIn hexBytes      `json:"created_payload_received,omitempty"`
}

// vectorDirKeys is one layer's keys and initial chain values (dirKeys).
type vectorDirKeys struct {
	BlockKey  hexBytes `json:"block_key"`
	HashKey   hexBytes `json:"hash_key"`
	StreamKey hexBytes `json:"stream_key"`
	ChainKey  hexBytes `json:"chain_key"`
	Tweak     hexBytes `json:"tweak"`
	Want      hexBytes `json:"check_value"`
}

func vectorKeys(k dirKeys) vectorDirKeys {
	return vectorDirKeys{k.BlockKey[:], k.HashKey[:], k.StreamKey[:], k.ChainKey[:], k.Tweak[:], k.Want[:]}
}

type vectorClient struct {
	RandLabel        string     `json:"rand_label"`
	Seeds            []hexBytes `json:"seeds"`
	Padding          hexBytes   `json:"padding"`
	Filler           hexBytes   `json:"filler"`
	EphemeralPrivate []hexBytes `json:"ephemeral_private"`
	EphemeralPublic  []hexBytes `json:"ephemeral_public"`
}

// vectorCell is one relay cell: Wire[i] is the payload on the i-th link it
// crosses (forward: client→hop 0 first; backward: hop k→hop k-1 first,
// ending with the payload the client receives).
type vectorCell struct {
	Hop       int        `json:"hop"`
	Command   string     `json:"link_command"`
	Plaintext hexBytes   `json:"plaintext_with_tag"`
	Tag       hexBytes   `json:"tag"`
	Wire      []hexBytes `json:"wire"`
}

type vectorPayload struct {
	Name  string   `json:"name"`
	Value string   `json:"value"`
	Body  hexBytes `json:"body"`
}

func TestVectors(t *testing.T) {
	var want vectorFile
	checkVectorFile(t, vectorPath, generateVectors(t), &want)
	checkVectorsIndependently(t, &want)
	var wantT telescopeVectors
	checkVectorFile(t, telescopeVectorPath, generateTelescopeVectors(t), &wantT)
}

// checkVectorFile writes got to path under -update; otherwise it loads the
// file into want and insists that got encodes identically.
func checkVectorFile(t *testing.T, path string, got, want any) {
	t.Helper()
	if *update {
		b, err := json.MarshalIndent(got, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (regenerate with go test ./circuit -run TestVectors -update)", err)
	}
	if err := json.Unmarshal(b, want); err != nil {
		t.Fatal(err)
	}
	gb, _ := json.Marshal(got)
	wb, _ := json.Marshal(want)
	if !bytes.Equal(gb, wb) {
		t.Fatal("generated vectors differ from " + path)
	}
}

// telescopeVectors is a 2-hop telescoping build: a one-hop CREATE to hop
// 0, then EXTEND through hop 0 to hop 1.
type telescopeVectors struct {
	Description       string      `json:"description"`
	RandomSource      string      `json:"random_source"`
	Clock             vectorClock `json:"clock"`
	OnionKeyLabels    []string    `json:"onion_key_labels"`
	RelayRandLabels   []string    `json:"relay_rand_labels"`
	ClientRandLabel   string      `json:"client_rand_label"`
	PeerIDs           []hexBytes  `json:"peer_ids"`
	Create0           hexBytes    `json:"create_payload_to_hop0"`
	Created0          hexBytes    `json:"created_payload_from_hop0"`
	ExtendPlaintext   hexBytes    `json:"extend_plaintext_with_tag"`
	ExtendWire        hexBytes    `json:"extend_relay_payload_to_hop0"`
	Create1           hexBytes    `json:"create_payload_hop0_to_hop1"`
	Created1          hexBytes    `json:"created_payload_hop1_to_hop0"`
	ExtendedWire      hexBytes    `json:"extended_relay_payload_to_client"`
	ExtendedPlaintext hexBytes    `json:"extended_plaintext_with_tag"`
	DataToHop1Wire    hexBytes    `json:"data_to_hop1_payload"`
}

func generateTelescopeVectors(t *testing.T) *telescopeVectors {
	v := &telescopeVectors{
		Description:     "obol circuit v3: 2-hop telescoping build (one-hop CREATE, EXTEND, EXTENDED) and one DATA cell to hop 1",
		RandomSource:    "as in circuit-3hop.json",
		Clock:           testVectorClock(),
		ClientRandLabel: "obol circuit telescope client",
	}
	tn := &testNet{}
	for i := 0; i < 2; i++ {
		kl, rl := fmt.Sprintf("obol circuit telescope onion key %d", i), fmt.Sprintf("obol circuit telescope relay %d", i)
		k := mustKey(t, kl)
		r, _ := NewResponder(ResponderConfig{Now: testClock, Rand: newDetRand(rl)}, []OnionKey{k})
		tn.relays = append(tn.relays, r)
		tn.specs = append(tn.specs, HopSpec{PeerID: peerID(i), OnionKey: k.Public})
		v.OnionKeyLabels, v.RelayRandLabels = append(v.OnionKeyLabels, kl), append(v.RelayRandLabels, rl)
		v.PeerIDs = append(v.PeerIDs, peerID(i))
	}
	rnd := newDetRand(v.ClientRandLabel)
	bc := (&testNet{relays: tn.relays[:1], specs: tn.specs[:1]}).build(t, rnd)
	v.Create0, v.Created0 = bc.creates[0], bc.createds[0]
	x, p, err := bc.client.Extend(rnd, testTime, tn.specs[1])
	if err != nil {
		t.Fatal(err)
	}
	v.ExtendWire = append(hexBytes(nil), p...)
	a, err := bc.relays[0].HandleForward(CmdRelay, p)
	if err != nil || a.Command != CmdCreate {
		t.Fatalf("extend: %v", err)
	}
	v.ExtendPlaintext, v.Create1 = p, a.Payload
	rc1, a1, err := tn.relays[1].Create(a.Payload)
	if err != nil {
		t.Fatal(err)
	}
	v.Created1 = a1.Payload
	ea, err := bc.relays[0].HandleCreated(a1.Payload)
	if err != nil {
		t.Fatal(err)
	}
	v.ExtendedWire = append(hexBytes(nil), ea.Payload...)
	_, cell, err := bc.client.Open(ea.Payload)
	if err != nil || cell.Command != RelayExtended {
		t.Fatalf("extended: %v", err)
	}
	v.ExtendedPlaintext = ea.Payload
	if err := bc.client.FinishExtend(x, cell.Body); err != nil {
		t.Fatal(err)
	}
	q, _ := bc.client.Seal(1, RelayCell{Command: RelayData, StreamID: 1, Body: []byte("obol vector: to hop 1")})
	v.DataToHop1Wire = append(hexBytes(nil), q...)
	if a, err := bc.relays[0].HandleForward(CmdRelay, q); err != nil || a.Kind != ActForward {
		t.Fatal(err)
	}
	if a, err := rc1.HandleForward(CmdRelay, q); err != nil || a.Kind != ActDeliver {
		t.Fatal(err)
	}
	return v
}

const vectorHops = 3

func generateVectors(t *testing.T) *vectorFile {
	v := &vectorFile{
		Description: "obol circuit v3: one-round-trip 3-hop build, layer keys, one cell to and from each hop, one 0-RTT cell, relay payload encodings",
		Clock:       testVectorClock(),
		RandomSource: "every random byte comes from a reader named by a label: block i (i = 0, 1, ...) = " +
			"SHA-256(UTF-8 label || uint64 big-endian i); the blocks are concatenated",
		Constants: map[string]int{"cell_size": CellSize, "payload_len": PayloadLen, "relay_header_len": RelayHeaderLen,
			"max_hops": MaxHops, "slot_len": SlotLen, "onion_len": OnionLen, "reply_slot_len": ReplySlotLen, "reply_len": ReplyLen},
	}
	tn := newVectorNet(t)
	clientRand := newDetRand("obol circuit vector client")
	b, bc := tn.create(t, clientRand)
	v.Client = vectorClientValues(tn, bc)
	for i := range tn.relays {
		v.Relays = append(v.Relays, vectorRelayValues(t, tn, bc, i))
	}
	early := vectorEarly(t, b, bc)
	c, err := b.Finish(bc.createds[0])
	if err != nil {
		t.Fatal(err)
	}
	bc.client = c
	v.Early = early
	for hop := 0; hop < vectorHops; hop++ {
		v.Forward = append(v.Forward, vectorForward(t, bc, hop))
	}
	for hop := 0; hop < vectorHops; hop++ {
		v.Backward = append(v.Backward, vectorBackward(t, bc, hop))
	}
	v.Payloads = vectorPayloads(t)
	return v
}

func newVectorNet(t *testing.T) *testNet {
	tn := &testNet{}
	for i := 0; i < vectorHops; i++ {
		k := mustKey(t, fmt.Sprintf("obol circuit vector onion key %d", i))
		r, err := NewResponder(ResponderConfig{Now: testClock, Rand: newDetRand(fmt.Sprintf("obol circuit vector relay %d", i))}, []OnionKey{k})
		if err != nil {
			t.Fatal(err)
		}
		tn.relays = append(tn.relays, r)
		tn.specs = append(tn.specs, HopSpec{PeerID: peerID(i), OnionKey: k.Public})
	}
	return tn
}

// vectorClientValues replays the client's random reader in the documented
// order: seeds, padding, then ephemerals from the last hop to the first.
func vectorClientValues(tn *testNet, bc *builtCircuit) vectorClient {
	r := newDetRand("obol circuit vector client")
	vc := vectorClient{RandLabel: r.label}
	hks := make([][keyLen]byte, vectorHops)
	for i := range hks {
		s := readN(r, seedLen)
		vc.Seeds = append(vc.Seeds, s)
		hks[i] = deriveHeaderKey(s)
	}
	vc.Padding = readN(r, (MaxHops-vectorHops)*SlotLen)
	vc.Filler = fillers(hks[:vectorHops-1])
	vc.EphemeralPrivate = make([]hexBytes, vectorHops)
	vc.EphemeralPublic = make([]hexBytes, vectorHops)
	for i := vectorHops - 1; i >= 0; i-- {
		priv := readN(r, 32)
		pub, _ := curve25519.X25519(priv, curve25519.Basepoint)
		vc.EphemeralPrivate[i], vc.EphemeralPublic[i] = priv, pub
	}
	return vc
}

func readN(r io.Reader, n int) hexBytes {
	b := make([]byte, n)
	io.ReadFull(r, b)
	return b
}

// vectorRelayValues recomputes hop i's handshake as its relay did.
func vectorRelayValues(t *testing.T, tn *testNet, bc *builtCircuit, i int) vectorRelay {
	key := mustKey(t, fmt.Sprintf("obol circuit vector onion key %d", i))
	rnd := newDetRand(fmt.Sprintf("obol circuit vector relay %d", i))
	onion, err := parseCreate(bc.creates[i])
	if err != nil {
		t.Fatal(err)
	}
	vr := vectorRelay{OnionKeyLabel: fmt.Sprintf("obol circuit vector onion key %d", i), RandLabel: rnd.label,
		PeerID: tn.specs[i].PeerID, OnionPrivate: key.Private[:], OnionPublic: key.Public[:],
		CreateReceived: bc.creates[i], Msg1: onion[:SlotLen], Rest: onion[SlotLen:], CreatedSent: bc.createds[i]}
	hs, err := responderState(newDetRand(rnd.label), key, onion[SlotLen:])
	if err != nil {
		t.Fatal(err)
	}
	routingPlain, _, _, err := hs.ReadMessage(nil, onion[:SlotLen])
	if err != nil {
		t.Fatal(err)
	}
	rt, _ := parseRouting(routingPlain)
	msg2, cs1, cs2, err := hs.WriteMessage(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	hk := deriveHeaderKey(rt.seed[:])
	kIR, kRI := cs1.UnsafeKey(), cs2.UnsafeKey()
	h := hs.ChannelBinding()
	lk := deriveLayerKeys(kIR, kRI, h)
	vr.Routing, vr.HeaderKey, vr.EphemeralPrivate, vr.Msg2 = routingPlain, hk[:], readN(newDetRand(rnd.label), 32), msg2
	vr.HandshakeHash, vr.KeyIR, vr.KeyRI = h, kIR[:], kRI[:]
	vr.LayerKeys = mustHKDF(append(kIR[:], kRI[:]...), h, labelLayers, layerKeysLen)
	vr.Forward, vr.Backward = vectorKeys(lk.Fwd), vectorKeys(lk.Back)
	vr.ReplyKey = lk.ReplyKey[:]
	vr.EarlyKeys = mustHKDF(rt.seed[:], nil, labelEarly, dirKeysLen)
	if i+1 < vectorHops {
		vr.CreateForwarded = bc.creates[i+1]
		vr.CreatedFromNextIn = bc.createds[i+1]
	}
	return vr
}

// vectorForward seals a DATA cell to hop and records it on every link.
func vectorForward(t *testing.T, bc *builtCircuit, hop int) vectorCell {
	rc := RelayCell{Command: RelayData, StreamID: 1, Body: []byte(fmt.Sprintf("obol vector: to hop %d", hop))}
	p, err := bc.client.Seal(hop, rc)
	if err != nil {
		t.Fatal(err)
	}
	return carryForward(t, bc, CmdRelay, hop, p)
}

func carryForward(t *testing.T, bc *builtCircuit, cmd Command, hop int, p []byte) vectorCell {
	vc := vectorCell{Hop: hop, Command: cmd.String()}
	var a Action
	for i := 0; i <= hop; i++ {
		vc.Wire = append(vc.Wire, append(hexBytes(nil), p...))
		var err error
		a, err = bc.relays[i].HandleForward(cmd, p)
		if err != nil || (i < hop) != (a.Kind == ActForward) {
			t.Fatalf("hop %d: %v %v", i, a.Kind, err)
		}
	}
	vc.Plaintext, vc.Tag = p, a.Cell.Tag[:]
	return vc
}

// vectorBackward originates a DATA cell at hop and records every link.
func vectorBackward(t *testing.T, bc *builtCircuit, hop int) vectorCell {
	rc := RelayCell{Command: RelayData, StreamID: 1, Body: []byte(fmt.Sprintf("obol vector: from hop %d", hop))}
	p, err := bc.relays[hop].Originate(rc)
	if err != nil {
		t.Fatal(err)
	}
	vc := vectorCell{Hop: hop, Command: CmdRelay.String()}
	for i := hop; i >= 0; i-- {
		if i < hop {
			if _, err := bc.relays[i].HandleBackward(p); err != nil {
				t.Fatal(err)
			}
		}
		vc.Wire = append(vc.Wire, append(hexBytes(nil), p...))
	}
	from, got, err := bc.client.Open(p)
	if err != nil || from != hop {
		t.Fatalf("open from %d: %d %v", hop, from, err)
	}
	vc.Plaintext, vc.Tag = p, got.Tag[:]
	return vc
}

// vectorEarly sends a 0-RTT BEGIN to the last hop before the build finishes.
func vectorEarly(t *testing.T, b *Build, bc *builtCircuit) vectorCell {
	body, _ := Begin{Addr: Address{Host: "example.com"}, Port: 443}.MarshalBinary()
	p, err := b.SealEarly(vectorHops-1, RelayCell{Command: RelayBegin, StreamID: 1, Body: body})
	if err != nil {
		t.Fatal(err)
	}
	return carryForward(t, bc, CmdRelayEarly, vectorHops-1, p)
}

func vectorPayloads(t *testing.T) []vectorPayload {
	var out []vectorPayload
	add := func(name string, m interface{ MarshalBinary() ([]byte, error) }) {
		b, err := m.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, vectorPayload{Name: name, Value: fmt.Sprintf("%+v", m), Body: b})
	}
	add("BEGIN", Begin{Addr: Address{Host: "example.com"}, Port: 443, Flags: BeginIPv6OK})
	add("BEGIN", Begin{Addr: Address{IP: netip.MustParseAddr("2001:db8::1")}, Port: 22})
	add("CONNECTED", Connected{IP: netip.MustParseAddr("192.0.2.10"), TTL: 300})
	add("END", End{Reason: EndExitPolicy})
	add("RESOLVE", Resolve{Host: "example.org"})
	add("RESOLVED", Resolved{Answers: []Answer{{IP: netip.MustParseAddr("192.0.2.11"), TTL: 60}}})
	add("SENDME", Sendme{Tag: [TagLen]byte{0xaa, 0xbb}})
	out = append(out, vectorPayload{Name: "DESTROY", Value: DestroyTimeout.String(), Body: DestroyPayload(DestroyTimeout)[:1]})
	return out
}

// checkVectorsIndependently replays the file through the API: relays with
// the file's onion keys and randomness turn the file's CREATE into the
// file's CREATED, and the client's finished circuit seals the file's cells.
func checkVectorsIndependently(t *testing.T, v *vectorFile) {
	for i, vr := range v.Relays {
		k := OnionKey{Private: [32]byte(vr.OnionPrivate), Public: [32]byte(vr.OnionPublic)}
		r, _ := NewResponder(ResponderConfig{Now: testClock, Rand: newDetRand(vr.RandLabel)}, []OnionKey{k})
		rc, a, err := r.Create(vr.CreateReceived)
		if err != nil {
			t.Fatalf("relay %d: %v", i, err)
		}
		if i+1 < len(v.Relays) {
			if !bytes.Equal(a.Payload, vr.CreateForwarded) {
				t.Fatalf("relay %d forwarded a different CREATE", i)
			}
			a, err = rc.HandleCreated(vr.CreatedFromNextIn)
			if err != nil {
				t.Fatal(err)
			}
		}
		if !bytes.Equal(a.Payload, vr.CreatedSent) {
			t.Fatalf("relay %d sent a different CREATED", i)
		}
	}
	for i, vr := range v.Relays {
		pub, _ := curve25519.X25519(vr.EphemeralPrivate, curve25519.Basepoint)
		if !bytes.Equal(v.Client.EphemeralPublic[i], vr.Msg1[:noiseKeyLen]) || !bytes.Equal(pub, vr.Msg2[:noiseKeyLen]) {
			t.Fatalf("hop %d: ephemerals do not match the messages", i)
		}
	}
	for _, vc := range v.Forward {
		if len(vc.Wire) != vc.Hop+1 || len(vc.Tag) != TagLen {
			t.Fatalf("forward cell to %d malformed", vc.Hop)
		}
	}
}

const layerVectorPath = "../specs/vectors/circuit-layer.json"

// layerVectors walks one layer's keys through each operation of §6 with
// every intermediate value.
type layerVectors struct {
	Description string        `json:"description"`
	KeyLabel    string        `json:"key_label"`
	Keys        vectorDirKeys `json:"keys"`
	Steps       []layerStep   `json:"steps"`
}

type layerStep struct {
	Party       string   `json:"party"`
	Op          string   `json:"op"`
	TweakBefore hexBytes `json:"tweak_before"`
	CheckBefore hexBytes `json:"check_value_before"`
	Input       hexBytes `json:"input"`
	Hash        hexBytes `json:"hash_x"`
	Output      hexBytes `json:"output"`
	Recognized  bool     `json:"recognized"`
	Tag         hexBytes `json:"tag"`
	TweakAfter  hexBytes `json:"tweak_after"`
	CheckAfter  hexBytes `json:"check_value_after"`
}

// step runs op on a copy of in and records it.
func step(party, name string, l *layer, in []byte, op func(p []byte) (bool, [TagLen]byte)) (layerStep, []byte) {
	s := layerStep{Party: party, Op: name, TweakBefore: bytes.Clone(l.t[:]), CheckBefore: bytes.Clone(l.want[:]), Input: bytes.Clone(in)}
	p := bytes.Clone(in)
	ok, tag := op(p)
	s.Hash, s.Output, s.Recognized = bytes.Clone(l.x[:]), bytes.Clone(p), ok
	s.Tag, s.TweakAfter, s.CheckAfter = bytes.Clone(tag[:]), bytes.Clone(l.t[:]), bytes.Clone(l.want[:])
	return s, p
}

func generateLayerVectors(t *testing.T) *layerVectors {
	v := &layerVectors{
		Description: "obol circuit v2 layer (specs/04-circuit.md §6): one layer's keys; a relay mixes a cell not addressed to it and the client unmixes it; the client seals a DROP cell to the relay, which recognises it; the relay originates a DROP cell, which the client recognises",
		KeyLabel:    "obol circuit layer vector keys",
	}
	k := parseDirKeys(readN(newDetRand(v.KeyLabel), dirKeysLen))
	v.Keys = vectorKeys(k)
	client, relay := newLayer(k), newLayer(k)
	add := func(s layerStep, p []byte) []byte { v.Steps = append(v.Steps, s); return p }
	mix := func(l *layer) func([]byte) (bool, [TagLen]byte) {
		return func(p []byte) (bool, [TagLen]byte) { return false, l.mix(p) }
	}
	unmix := func(l *layer) func([]byte) (bool, [TagLen]byte) {
		return func(p []byte) (bool, [TagLen]byte) { return l.recognized(p), l.unmix(p) }
	}
	p := add(step("relay", "mix", &relay, readN(newDetRand("obol circuit layer vector cell"), PayloadLen), mix(&relay)))
	add(step("client", "unmix", &client, p, unmix(&client)))
	drop, _ := EncodeRelayPlaintext(RelayCell{Command: RelayDrop, Body: []byte("obol layer vector")})
	p = add(step("client", "seal", &client, drop, func(p []byte) (bool, [TagLen]byte) { return true, client.sealFor(p) }))
	if s := add(step("relay", "open", &relay, p, relay.open)); !bytes.Equal(s[TagLen:], drop[TagLen:]) {
		t.Fatal("relay did not recover the sealed cell")
	}
	p = add(step("relay", "originate", &relay, drop, func(p []byte) (bool, [TagLen]byte) { return true, relay.originate(p) }))
	if s := add(step("client", "open", &client, p, client.openBack)); !bytes.Equal(s[TagLen:], drop[TagLen:]) || !v.Steps[len(v.Steps)-1].Recognized {
		t.Fatal("client did not recognise the originated cell")
	}
	if !v.Steps[3].Recognized {
		t.Fatal("relay did not recognise the sealed cell")
	}
	return v
}

func TestLayerVectors(t *testing.T) {
	var want layerVectors
	checkVectorFile(t, layerVectorPath, generateLayerVectors(t), &want)
}

func loadJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}
