package circuit

import (
	"fmt"
	"io"
	"time"

	"github.com/flynn/noise"
)

// HopSpec names one relay of a path: its peer ID and the onion key from its
// verified descriptor.
type HopSpec struct {
	PeerID   []byte
	OnionKey [32]byte
}

// pendingHop is one hop of a build waiting for its msg2.
type pendingHop struct {
	hs    *noise.HandshakeState
	early layer
}

// Build is a client's circuit build in flight: created by NewBuild (whose
// CREATE payload goes to the first hop), finished by Finish with the
// CREATED payload. Until then SealEarly sends 0-RTT cells.
type Build struct {
	hops []pendingHop
}

// NewBuild prepares a one-round-trip build of path (1–MaxHops hops) and
// returns the CREATE payload for path[0]. rnd supplies every random byte
// (seeds, padding, ephemerals) in a fixed order, so a deterministic reader
// gives a deterministic build. now is the client's clock: every hop
// refuses a create more than MaxCreateSkew away from its own.
func NewBuild(rnd io.Reader, now time.Time, path []HopSpec) (*Build, []byte, error) {
	onion, hops, err := buildOnion(rnd, now, path)
	if err != nil {
		return nil, nil, fmt.Errorf("build circuit: %w", err)
	}
	return &Build{hops: hops}, createPayload(onion), nil
}

// buildOnion draws the seeds and padding from rnd, then writes the msg1s
// from the last hop to the first.
func buildOnion(rnd io.Reader, now time.Time, path []HopSpec) ([]byte, []pendingHop, error) {
	n := len(path)
	if n < 1 || n > MaxHops {
		return nil, nil, fmt.Errorf("%d hops: %w", n, ErrPathLength)
	}
	for _, h := range path[1:] {
		if len(h.PeerID) == 0 || len(h.PeerID) > MaxPeerIDLen {
			return nil, nil, ErrBadPeerID
		}
	}
	seeds := make([][seedLen]byte, n)
	hks := make([][keyLen]byte, n)
	for i := range seeds {
		if _, err := io.ReadFull(rnd, seeds[i][:]); err != nil {
			return nil, nil, fmt.Errorf("read seed: %w", err)
		}
		hks[i] = deriveHeaderKey(seeds[i][:])
	}
	pad := make([]byte, (MaxHops-n)*SlotLen)
	if _, err := io.ReadFull(rnd, pad); err != nil {
		return nil, nil, fmt.Errorf("read padding: %w", err)
	}
	return wrapOnion(rnd, minuteOf(now), path, seeds, hks, append(pad, fillers(hks[:n-1])...))
}

// wrapOnion nests the msg1s: rest is the last hop's rest (padding | filler).
func wrapOnion(rnd io.Reader, minute uint32, path []HopSpec, seeds [][seedLen]byte, hks [][keyLen]byte, rest []byte) ([]byte, []pendingHop, error) {
	n := len(path)
	hops := make([]pendingHop, n)
	var onion []byte
	for i := n - 1; i >= 0; i-- {
		if i < n-1 {
			rest = make([]byte, OnionLen-SlotLen)
			xorInto(rest, onion, prg(hks[i], OnionLen))
		}
		r := routing{kind: routeLast, minute: minute, seed: seeds[i]}
		if i < n-1 {
			r = routing{kind: routeForward, next: path[i+1].PeerID, minute: minute, seed: seeds[i]}
		}
		hs, err := initiatorState(rnd, path[i].OnionKey, rest)
		if err != nil {
			return nil, nil, fmt.Errorf("hop %d: %w", i, err)
		}
		msg1, _, _, err := hs.WriteMessage(nil, r.marshal())
		if err != nil {
			return nil, nil, fmt.Errorf("hop %d: write msg1: %w", i, err)
		}
		onion = append(msg1, rest...)
		hops[i] = pendingHop{hs: hs, early: deriveEarlyKeys(seeds[i][:])}
	}
	return onion, hops, nil
}

// Len is the number of hops of the build (0 once finished).
func (b *Build) Len() int { return len(b.hops) }

// SealEarly encrypts a relay cell to hop (0-based) under the early keys and
// returns the payload of a RELAY_EARLY cell (0-RTT data: see the spec for
// what forward secrecy it lacks). Call it only before Finish.
func (b *Build) SealEarly(hop int, rc RelayCell) ([]byte, error) {
	if b.hops == nil {
		return nil, fmt.Errorf("seal early after finish: %w", ErrUnexpectedCell)
	}
	layers := make([]*layer, len(b.hops))
	for i := range b.hops {
		layers[i] = &b.hops[i].early
	}
	p := make([]byte, PayloadLen)
	_, err := sealTo(p, layers, hop, rc)
	return p, err
}

// Finish reads the CREATED payload and returns the open circuit. The build
// is spent afterwards, whatever the outcome: its handshake states (and the
// ephemeral keys in them) are dropped.
func (b *Build) Finish(created []byte) (*ClientCircuit, error) {
	hops := b.hops
	b.hops = nil
	reply, err := parseCreated(created)
	if err != nil {
		return nil, err
	}
	c := &ClientCircuit{}
	for i, h := range hops {
		k, err := finishHop(h.hs, reply[:ReplySlotLen])
		if err != nil {
			return nil, fmt.Errorf("finish hop %d: %w", i, err)
		}
		c.addHop(k)
		reply = unwrapReply(reply[ReplySlotLen:], k.ReplyKey)
	}
	return c, nil
}

// finishHop reads one msg2 and derives the hop's layer keys.
func finishHop(hs *noise.HandshakeState, msg2 []byte) (layerKeys, error) {
	payload, cs1, cs2, err := hs.ReadMessage(nil, msg2)
	if err != nil || cs1 == nil {
		return layerKeys{}, fmt.Errorf("read msg2: %w", ErrHandshake)
	}
	if len(payload) != 0 {
		return layerKeys{}, fmt.Errorf("msg2 payload: %w", ErrPayloadTrailing)
	}
	return deriveLayerKeys(cs1.UnsafeKey(), cs2.UnsafeKey(), hs.ChannelBinding()), nil
}

// ClientCircuit is the client's state of an open circuit: one forward and
// one backward layer per hop. It is not safe for concurrent use; one
// goroutine owns it.
type ClientCircuit struct {
	fwd  []*layer
	back []*layer
}

func (c *ClientCircuit) addHop(k layerKeys) {
	f, b := newLayer(k.Fwd), newLayer(k.Back)
	c.fwd = append(c.fwd, &f)
	c.back = append(c.back, &b)
}

// Len is the number of hops.
func (c *ClientCircuit) Len() int { return len(c.fwd) }

// Seal encrypts a relay cell addressed to hop (0-based; any hop may be
// addressed) and returns the payload of a RELAY cell for the first hop.
func (c *ClientCircuit) Seal(hop int, rc RelayCell) ([]byte, error) {
	p := make([]byte, PayloadLen)
	_, err := sealTo(p, c.fwd, hop, rc)
	return p, err
}

// SealInto is Seal writing into p, which must have PayloadLen bytes (for
// example the payload part of a cell buffer); it does not allocate. It
// returns the cell's tag, which an authenticated SENDME from hop will echo.
func (c *ClientCircuit) SealInto(p []byte, hop int, rc RelayCell) ([TagLen]byte, error) {
	return sealTo(p, c.fwd, hop, rc)
}

// sealTo encodes rc into p and inverts the layers hop..0 over it, so that
// each hop's mix peels one and hop recognises the cell.
func sealTo(p []byte, layers []*layer, hop int, rc RelayCell) ([TagLen]byte, error) {
	var t [TagLen]byte
	if hop < 0 || hop >= len(layers) {
		return t, fmt.Errorf("seal to hop %d of %d: %w", hop, len(layers), ErrBadHop)
	}
	if err := checkPayloadLen(p); err != nil {
		return t, fmt.Errorf("seal: %w", err)
	}
	if err := layers[0].checkRoom(); err != nil {
		return t, fmt.Errorf("seal: %w", err)
	}
	if err := encodeRelay(p, rc); err != nil {
		return t, err
	}
	t = layers[hop].sealFor(p)
	for i := hop - 1; i >= 0; i-- {
		layers[i].unmix(p)
	}
	return t, nil
}

// Open decrypts the payload of a backward RELAY cell in place and returns
// the hop (0-based) that originated it and the decoded cell. ErrUnrecognized
// means no hop's tag matched: the cell was tampered with and the circuit
// must be destroyed.
func (c *ClientCircuit) Open(p []byte) (int, RelayCell, error) {
	if err := checkPayloadLen(p); err != nil {
		return 0, RelayCell{}, fmt.Errorf("open relay cell: %w", err)
	}
	if err := c.back[0].checkRoom(); err != nil {
		return 0, RelayCell{}, fmt.Errorf("open relay cell: %w", err)
	}
	for i, l := range c.back {
		if ok, tag := l.openBack(p); ok {
			rc, err := decodeRelay(p)
			rc.Tag = tag
			return i, rc, err
		}
	}
	return 0, RelayCell{}, fmt.Errorf("open relay cell: %w", ErrUnrecognized)
}
