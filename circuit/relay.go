package circuit

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/flynn/noise"
)

// OnionKey is one of a relay's X25519 onion keys.
type OnionKey struct {
	Private [32]byte
	Public  [32]byte
}

// GenerateOnionKey draws a fresh onion key from rnd.
func GenerateOnionKey(rnd io.Reader) (OnionKey, error) {
	kp, err := noiseSuite.GenerateKeypair(rnd)
	if err != nil {
		return OnionKey{}, fmt.Errorf("generate onion key: %w", err)
	}
	return OnionKey{Private: [32]byte(kp.Private), Public: [32]byte(kp.Public)}, nil
}

// ResponderConfig configures a Responder. The zero value is usable.
type ResponderConfig struct {
	// Rand supplies the relay's ephemerals and reply padding; nil means
	// crypto/rand. Tests pass a deterministic reader. It must be safe for
	// concurrent use if Create is called concurrently.
	Rand io.Reader
	// Now is the clock creates are judged by (default time.Now).
	Now func() time.Time
	// ReplayEntries bounds the replay cache (DefaultReplayEntries if zero).
	ReplayEntries int
	// MaxEarlyCells bounds the RELAY_EARLY cells a circuit accepts
	// (DefaultMaxEarlyCells if zero).
	MaxEarlyCells int
}

// DefaultMaxEarlyCells is the default number of RELAY_EARLY (0-RTT) cells
// accepted per circuit.
const DefaultMaxEarlyCells = 8

// Responder is the relay side of circuit handshakes: it answers CREATE
// with a relay's current onion keys and keeps the replay cache. It is safe
// for concurrent use; each RelayCircuit it returns is owned by one
// goroutine.
type Responder struct {
	rand     io.Reader
	now      func() time.Time
	maxEarly int
	replay   *ReplayCache

	mu   sync.RWMutex // guards keys
	keys []OnionKey   // tried in order: newest first
}

// NewResponder returns a responder accepting creates under keys (newest first).
func NewResponder(cfg ResponderConfig, keys []OnionKey) (*Responder, error) {
	r := &Responder{rand: cfg.Rand, now: cfg.Now, maxEarly: cfg.MaxEarlyCells, replay: NewReplayCache(cfg.ReplayEntries)}
	if r.rand == nil {
		r.rand = rand.Reader
	}
	if r.now == nil {
		r.now = time.Now
	}
	if r.maxEarly <= 0 {
		r.maxEarly = DefaultMaxEarlyCells
	}
	return r, r.SetOnionKeys(keys)
}

// SetOnionKeys replaces the accepted onion keys (newest first; during a
// rotation both the old and the new key). The replay cache does not
// depend on them: it is kept by the creates' time.
func (r *Responder) SetOnionKeys(keys []OnionKey) error {
	if len(keys) == 0 {
		return ErrNoOnionKeys
	}
	r.mu.Lock()
	r.keys = append([]OnionKey(nil), keys...)
	r.mu.Unlock()
	return nil
}

// Create processes the payload of an inbound CREATE. On success it returns
// the new circuit and either ActForward (CREATE to Action.Next; the relay
// answers later, from HandleCreated) or ActBackward (CREATED: this relay is
// the last hop). Errors: ErrReplay, ErrReplayFull, ErrClockSkew, ErrHandshake,
// ErrBadHandshakeType and decoding errors; answer them with DESTROY.
func (r *Responder) Create(payload []byte) (*RelayCircuit, Action, error) {
	onion, err := parseCreate(payload)
	if err != nil {
		return nil, Action{}, err
	}
	msg1, rest := onion[:SlotLen], onion[SlotLen:]
	now := r.now()
	if r.replay.Seen(now, msg1[:noiseKeyLen]) {
		return nil, Action{}, fmt.Errorf("create: %w", ErrReplay)
	}
	hs, rt, err := r.readMsg1(msg1, rest)
	if err != nil {
		return nil, Action{}, fmt.Errorf("create: %w", err)
	}
	if err := r.replay.Add(rt.minute, now, msg1[:noiseKeyLen]); err != nil {
		return nil, Action{}, fmt.Errorf("create: %w", err)
	}
	return r.respond(hs, rt, rest)
}

// readMsg1 tries each onion key in turn.
func (r *Responder) readMsg1(msg1, rest []byte) (*noise.HandshakeState, routing, error) {
	r.mu.RLock()
	keys := r.keys
	r.mu.RUnlock()
	for _, k := range keys {
		hs, err := responderState(r.rand, k, rest)
		if err != nil {
			return nil, routing{}, err
		}
		payload, _, _, err := hs.ReadMessage(nil, msg1)
		if err != nil {
			continue
		}
		rt, err := parseRouting(payload)
		if err != nil {
			return nil, routing{}, fmt.Errorf("%w: %w", ErrHandshake, err)
		}
		return hs, rt, nil
	}
	return nil, routing{}, ErrHandshake
}

// respond writes msg2 and either forwards the peeled onion or answers.
func (r *Responder) respond(hs *noise.HandshakeState, rt routing, rest []byte) (*RelayCircuit, Action, error) {
	msg2, cs1, cs2, err := hs.WriteMessage(nil, nil)
	if err != nil || cs1 == nil {
		return nil, Action{}, fmt.Errorf("create: write msg2: %w", ErrHandshake)
	}
	c := newRelayCircuit(deriveLayerKeys(cs1.UnsafeKey(), cs2.UnsafeKey(), hs.ChannelBinding()), rt.seed[:], r.maxEarly)
	if rt.kind == routeForward {
		c.state, c.next, c.msg2 = stateAwaitCreated, rt.next, msg2
		next := peelOnion(rest, deriveHeaderKey(rt.seed[:]))
		return c, Action{Kind: ActForward, Command: CmdCreate, Payload: createPayload(next), Next: rt.next}, nil
	}
	reply := make([]byte, ReplyLen)
	copy(reply, msg2)
	if _, err := io.ReadFull(r.rand, reply[ReplySlotLen:]); err != nil {
		return nil, Action{}, fmt.Errorf("create: reply padding: %w", err)
	}
	c.state = stateLast
	return c, Action{Kind: ActBackward, Command: CmdCreated, Payload: createdPayload(reply)}, nil
}

// ActionKind says what to do with the result of processing one cell.
type ActionKind uint8

// Action kinds.
const (
	// ActDeliver: the cell was addressed to this hop; Action.Cell holds it.
	ActDeliver ActionKind = iota + 1
	// ActForward: send Action.Command/Payload to the next hop (for a
	// CREATE: to the peer Action.Next on a new circuit ID).
	ActForward
	// ActBackward: send Action.Command/Payload to the previous hop.
	ActBackward
	// ActClose: a DESTROY arrived (Action.Reason); tear the circuit down.
	ActClose
	// ActNone: nothing to do (circuit-level PADDING).
	ActNone
)

// Action is the outcome of one inbound cell at a relay.
type Action struct {
	Kind    ActionKind
	Command Command       // link command of the cell to send (ActForward, ActBackward)
	Payload []byte        // PayloadLen bytes to send (ActForward, ActBackward)
	Next    []byte        // peer ID to open the next hop to (CREATE only)
	Cell    RelayCell     // the delivered relay cell (ActDeliver)
	Reason  DestroyReason // why the circuit was destroyed (ActClose)
}

// relayState is a relay circuit's state:
//
//	CREATE, kind last                                 CREATE, kind forward
//	       │                                                  │
//	       ▼                                                  ▼
//	┌─────────────┐  EXTEND   ┌────────────────────┐   ┌───────────────────┐
//	│  stateLast  │ ────────► │ stateAwaitExtended │   │ stateAwaitCreated │
//	└─────────────┘           └─────────┬──────────┘   └─────────┬─────────┘
//	                                    │ CREATED                │ CREATED
//	                                    │ (send EXTENDED)        │ (send CREATED)
//	                                    ▼                        ▼
//	                            ┌──────────────────────────────────────┐
//	                            │              stateOpen               │
//	                            └──────────────────────────────────────┘
//
// A DESTROY or any error ends the circuit in every state (the caller drops
// the RelayCircuit).
type relayState uint8

const (
	stateLast          relayState = iota + 1 // no next hop: cells end here
	stateAwaitCreated                        // one-RTT build: CREATE forwarded, msg2 held
	stateAwaitExtended                       // telescoping: EXTEND turned into CREATE
	stateOpen                                // next hop connected
)

// RelayCircuit is a relay's state of one circuit: its layers and what it
// knows of the path — the previous hop (kept by the caller) and the next.
// It is not safe for concurrent use. Payloads passed in are decrypted or
// encrypted in place and returned in the Action.
type RelayCircuit struct {
	state     relayState
	fwd, back layer
	early     layer
	earlyLeft int
	replyKey  [keyLen]byte
	msg2      []byte // held until the next hop's CREATED (one-RTT build)
	next      []byte // next hop's peer ID
}

func newRelayCircuit(k layerKeys, seed []byte, maxEarly int) *RelayCircuit {
	return &RelayCircuit{
		fwd:   newLayer(k.Fwd),
		back:  newLayer(k.Back),
		early: deriveEarlyKeys(seed), earlyLeft: maxEarly, replyKey: k.ReplyKey,
	}
}

// Next returns the next hop's peer ID, or nil while this is the last hop.
func (c *RelayCircuit) Next() []byte {
	if c.state == stateAwaitExtended || c.state == stateLast {
		return nil
	}
	return c.next
}

// HandleForward processes the payload of a RELAY or RELAY_EARLY cell from
// the previous hop: ActDeliver if it is addressed here, ActForward if not,
// or ErrUnrecognized if there is no hop to forward to (destroy the circuit).
// A delivered EXTEND is answered with an ActForward CREATE.
func (c *RelayCircuit) HandleForward(cmd Command, p []byte) (Action, error) {
	l, err := c.forwardLayer(cmd)
	if err == nil {
		err = checkPayloadLen(p)
	}
	if err == nil {
		err = l.checkRoom()
	}
	if err != nil {
		return Action{}, fmt.Errorf("forward %v: %w", cmd, err)
	}
	ok, tag := l.open(p)
	if cmd == CmdRelayEarly && c.earlyLeft == 0 {
		c.early = layer{} // the last early cell: drop the early keys now
	}
	if ok {
		return c.deliver(p, tag)
	}
	if c.state == stateLast || c.state == stateAwaitExtended {
		return Action{}, fmt.Errorf("forward %v: %w", cmd, ErrUnrecognized)
	}
	return Action{Kind: ActForward, Command: cmd, Payload: p}, nil
}

// forwardLayer picks the layer for cmd and enforces the early-cell rules.
func (c *RelayCircuit) forwardLayer(cmd Command) (*layer, error) {
	switch {
	case cmd == CmdRelayEarly && c.earlyLeft <= 0:
		return nil, ErrEarlyLimit
	case cmd == CmdRelayEarly:
		c.earlyLeft--
		return &c.early, nil
	case cmd != CmdRelay || c.state == stateAwaitCreated:
		return nil, ErrUnexpectedCell
	}
	// The client sends RELAY only once the build is finished: no early
	// cell can follow, so the early layer is dropped.
	c.early, c.earlyLeft = layer{}, 0
	return &c.fwd, nil
}

// deliver decodes a recognized cell; EXTEND is handled here.
func (c *RelayCircuit) deliver(p []byte, tag [TagLen]byte) (Action, error) {
	rc, err := decodeRelay(p)
	if err != nil {
		return Action{}, err
	}
	rc.Tag = tag
	if rc.Command == RelayExtend {
		return c.extend(rc.Body)
	}
	return Action{Kind: ActDeliver, Cell: rc}, nil
}

// extend turns a telescoping EXTEND into a CREATE for the next hop.
func (c *RelayCircuit) extend(body []byte) (Action, error) {
	if c.state != stateLast {
		return Action{}, fmt.Errorf("extend: %w", ErrUnexpectedCell)
	}
	x, err := ParseExtend(body)
	if err != nil {
		return Action{}, err
	}
	c.state, c.next = stateAwaitExtended, x.Next
	return Action{Kind: ActForward, Command: CmdCreate, Payload: createPayloadFromMsg(x.Create), Next: x.Next}, nil
}

// HandleCreated processes the payload of a CREATED from the next hop and
// returns what to send back: a CREATED (one-RTT build) or a RELAY cell
// carrying EXTENDED (telescoping).
func (c *RelayCircuit) HandleCreated(p []byte) (Action, error) {
	reply, err := parseCreated(p)
	if err != nil {
		return Action{}, err
	}
	switch c.state {
	case stateAwaitCreated:
		out := wrapReply(c.msg2, reply[:ReplyLen-ReplySlotLen], c.replyKey)
		c.state, c.msg2 = stateOpen, nil
		return Action{Kind: ActBackward, Command: CmdCreated, Payload: createdPayload(out)}, nil
	case stateAwaitExtended:
		c.state = stateOpen
		q, err := c.Originate(RelayCell{Command: RelayExtended, Body: p[:CreatedLen]})
		return Action{Kind: ActBackward, Command: CmdRelay, Payload: q}, err
	}
	return Action{}, fmt.Errorf("created: %w", ErrUnexpectedCell)
}

// HandleBackward adds this hop's layer to the payload of a RELAY cell from
// the next hop and returns it for the previous hop.
func (c *RelayCircuit) HandleBackward(p []byte) (Action, error) {
	if c.state != stateOpen {
		return Action{}, fmt.Errorf("backward relay: %w", ErrUnexpectedCell)
	}
	if err := checkPayloadLen(p); err != nil {
		return Action{}, fmt.Errorf("backward relay: %w", err)
	}
	if err := c.back.checkRoom(); err != nil {
		return Action{}, fmt.Errorf("backward relay: %w", err)
	}
	c.back.mix(p)
	return Action{Kind: ActBackward, Command: CmdRelay, Payload: p}, nil
}

// Originate encrypts a relay cell from this hop to the client and returns
// the payload of a backward RELAY cell. Cells from Originate and
// HandleBackward must be sent in the order they were produced.
func (c *RelayCircuit) Originate(rc RelayCell) ([]byte, error) {
	p := make([]byte, PayloadLen)
	_, err := c.OriginateInto(p, rc)
	return p, err
}

// OriginateInto is Originate writing into p, which must have PayloadLen
// bytes; it does not allocate. It returns the cell's tag, which an
// authenticated SENDME from the client will echo.
func (c *RelayCircuit) OriginateInto(p []byte, rc RelayCell) ([TagLen]byte, error) {
	var t [TagLen]byte
	if err := checkPayloadLen(p); err != nil {
		return t, fmt.Errorf("originate: %w", err)
	}
	if err := c.back.checkRoom(); err != nil {
		return t, fmt.Errorf("originate: %w", err)
	}
	if err := encodeRelay(p, rc); err != nil {
		return t, err
	}
	return c.back.originate(p), nil
}

// DestroyReasonFor maps an error from this package to the DESTROY reason a
// relay sends.
func DestroyReasonFor(err error) DestroyReason {
	switch {
	case errors.Is(err, ErrReplay):
		return DestroyReplay
	case errors.Is(err, ErrClockSkew):
		return DestroyClockSkew
	case errors.Is(err, ErrReplayFull), errors.Is(err, ErrLayerExhausted):
		return DestroyResourceLimit
	case errors.Is(err, ErrHandshake):
		return DestroyHandshake
	case errors.Is(err, ErrUnrecognized):
		return DestroyUnrecognized
	}
	return DestroyProtocol
}
