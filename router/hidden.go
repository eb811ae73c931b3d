package router

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/obolnet/obol/circuit"
	"github.com/obolnet/obol/descriptor"
)

// Hidden services at a relay (specs/07-hidden.md): the introduction point,
// the rendezvous point and descriptor fetches on a client's behalf.
//
// A circuit takes at most one hidden-service role:
//
//	none ──ESTABLISH_INTRO──► intro (service side; receives INTRODUCE2)
//	none ──ESTABLISH_RENDEZVOUS──► waiting (client side) ──RENDEZVOUS1 of the service──► spliced
//	none ──RENDEZVOUS1──► spliced (service side)
//	none ──RENDEZVOUS1 before the cookie──► early ──the client's ESTABLISH_RENDEZVOUS──► spliced
//
// A client circuit may send INTRODUCE1 and HS_FETCH without taking a role.
// Cells for another circuit are queued to that circuit's drain goroutine,
// which takes that circuit's lock: a hop never holds two circuits' locks.
// The relay learns nothing beyond what it knows of any circuit: each side
// of an intro or a splice is a circuit whose previous hop is a relay.
//
// Payment of a splice (specs/05-payment.md §7.7): a cell that crosses the
// rendezvous point is counted once, on the client's side — when it
// arrives from the client, or when it leaves towards the client — and the
// service's side moves HS_DATA unmetered. Everything else the service's
// side moves is metered as on any circuit, and a client side paused for
// payment takes no HS_DATA from the service's side until it is paid, so
// that the splice moves nothing the client side has not paid for.

// HSDirectory is the relay's access to hidden-service descriptors in the
// DHT, used on behalf of clients and services that ask through a circuit
// (HS_FETCH, HS_STORE), so that no DHT node sees who asks. FetchHS returns
// the raw record, or an error if there is none; StoreHS validates and
// stores one.
type HSDirectory interface {
	FetchHS(ctx context.Context, index [32]byte) ([]byte, error)
	StoreHS(ctx context.Context, rec []byte) error
}

// SetHSDirectory lets the relay answer HS_FETCH and HS_STORE from d;
// without one it answers that it does not. Call it before Run.
func (r *Router) SetHSDirectory(d HSDirectory) {
	r.hidden.mu.Lock()
	r.hidden.dir = d
	r.hidden.mu.Unlock()
}

// Limits of the hidden-service roles. The relay's introduction rate is
// shared out among the service circuits: each has a bucket of its own
// whose rate is introRateAll divided by the number of service circuits
// (at most introRate), so that a flood of introductions to one service,
// or to many circuits one attacker registered, takes only their shares
// and never another service's.
const (
	introRate          = 25   // INTRODUCE2 per second to one service circuit, at most
	introRateAll       = 200  // INTRODUCE per second at this relay, all services together
	maxIntroCircuits   = 256  // service circuits at this relay (a share ≥ 0.78/s)
	maxIntroducePerCir = 8    // INTRODUCE1 one client circuit may send
	maxWaiting         = 4096 // client circuits waiting at this rendezvous point
	replayWindow       = 15 * time.Minute
	maxReplayEntries   = 1 << 17
	spliceQueue        = 2048            // cells queued to one circuit from another
	earlyHold          = 5 * time.Second // how long an early RENDEZVOUS1 waits for its cookie
	maxEarly           = 1024            // early RENDEZVOUS1 held at once
	maxFetches         = 64              // descriptor fetches in flight at this relay
	fetchTimeout       = 15 * time.Second
)

// rendezvousWait is how long a client circuit may wait at a rendezvous
// point for the service before it is torn down (a variable for tests).
var rendezvousWait atomic.Int64

func init() { rendezvousWait.Store(int64(90 * time.Second)) }

// introShare is the rate and burst of each of n service circuits.
func introShare(n int) (rate, burst float64) {
	rate = min(introRate, introRateAll/float64(max(n, 1)))
	return rate, max(2*rate, 1)
}

var (
	errHSRole   = errors.New("router: hidden-service cell not allowed in this circuit's role")
	errHSCookie = errors.New("router: unknown or duplicate rendezvous cookie")
)

type hsRole uint8

const (
	roleNone hsRole = iota
	roleIntro
	roleWaiting
	roleSpliced
	roleEarly // service side: RENDEZVOUS1 came before the client's cookie
)

// hsState is a circuit's hidden-service state. role, auth, cookie and
// introduces are guarded by the hop's mu; peer by hiddenPoints.mu.
type hsState struct {
	role       hsRole
	auth       [descriptor.AuthKeyLen]byte
	cookie     [descriptor.CookieLen]byte
	introduces int
	fetching   bool   // a fetch or a store is in flight
	store      []byte // HS_STORE chunks so far
	storeTotal int
	bucket     bucket // INTRODUCE2 to this service circuit (hiddenPoints.mu)
	peer       *hop   // the other side of a splice (hiddenPoints.mu)
	in         chan queued
	done       chan struct{}
	// service marks the service's side of a splice (it sent
	// RENDEZVOUS1): its HS_DATA rides on the client side's payments.
	service bool
	// paid is signalled (with the hop's mu) when a circuit paused for
	// payment is paid again or closes: the drain waits on it before it
	// passes HS_DATA on to a paused circuit.
	paid *sync.Cond
}

type queued struct {
	rc      circuit.RelayCell
	destroy bool
}

// earlyRendezvous is a service circuit whose RENDEZVOUS1 came before the
// client's ESTABLISH_RENDEZVOUS (the two travel on different circuits, and
// a client need not wait for RENDEZVOUS_ESTABLISHED before introducing).
type earlyRendezvous struct {
	svc       *hop
	handshake [descriptor.HandshakeRspLen]byte
}

// hiddenPoints is the relay's registry of intro and rendezvous circuits.
type hiddenPoints struct {
	mu       sync.Mutex // guards everything below and hsState.peer, .bucket
	dir      HSDirectory
	intros   map[[descriptor.AuthKeyLen]byte]*hop
	cookies  map[[descriptor.CookieLen]byte]*hop
	early    map[[descriptor.CookieLen]byte]earlyRendezvous
	replay   map[[32]byte]time.Time
	fetches  int
	initDone bool
	now      func() time.Time // time.Now; tests set a clock
}

func (p *hiddenPoints) init() {
	if !p.initDone {
		p.intros = map[[descriptor.AuthKeyLen]byte]*hop{}
		p.cookies = map[[descriptor.CookieLen]byte]*hop{}
		p.early = map[[descriptor.CookieLen]byte]earlyRendezvous{}
		p.replay = map[[32]byte]time.Time{}
		if p.now == nil {
			p.now = time.Now
		}
		p.initDone = true
	}
}

// hidden handles a hidden-service relay cell addressed to this hop. mu is
// held.
func (h *hop) hidden(rc circuit.RelayCell) error {
	if h.hs == nil {
		h.hs = &hsState{}
	}
	switch rc.Command {
	case descriptor.CmdEstablishIntro:
		return h.establishIntro(rc.Body)
	case descriptor.CmdIntroduce1:
		return h.introduce1(rc.Body)
	case descriptor.CmdEstablishRendezvous:
		return h.establishRendezvous(rc.Body)
	case descriptor.CmdRendezvous1:
		return h.rendezvous1(rc.Body)
	case descriptor.CmdHSData:
		return h.spliceData(rc.Body)
	case descriptor.CmdHSFetch:
		return h.fetch(rc.Body)
	case descriptor.CmdHSStore:
		return h.storeChunk(rc.Body)
	}
	return fmt.Errorf("router: %v not handled at this hop", rc.Command)
}

func (h *hop) establishIntro(body []byte) error {
	m, err := descriptor.ParseEstablishIntro(body, time.Now())
	if err != nil || h.hs.role != roleNone {
		return errors.Join(err, errHSRole)
	}
	h.startDrain()
	p := &h.r.hidden
	p.mu.Lock()
	ok := p.register(h, m.AuthKey)
	p.mu.Unlock()
	if !ok {
		return h.originate(circuit.RelayCell{Command: descriptor.CmdIntroEstablished, Body: []byte{1}})
	}
	return h.originate(circuit.RelayCell{Command: descriptor.CmdIntroEstablished, Body: []byte{0}})
}

// register makes h the service circuit of auth, unless the key is taken
// or the relay carries maxIntroCircuits already. p.mu is held.
func (p *hiddenPoints) register(h *hop, auth [descriptor.AuthKeyLen]byte) bool {
	p.init()
	if _, dup := p.intros[auth]; dup || len(p.intros) >= maxIntroCircuits {
		return false
	}
	h.hs.role, h.hs.auth = roleIntro, auth
	p.intros[auth] = h
	return true
}

// introduce1 passes a client's INTRODUCE on to the service circuit named
// by its auth key and acknowledges it.
func (h *hop) introduce1(body []byte) error {
	if h.hs.role != roleNone {
		return errHSRole
	}
	h.hs.introduces++
	status := h.r.hidden.introduce(body, h.hs.introduces)
	return h.originate(circuit.RelayCell{Command: descriptor.CmdIntroduceAck, Body: []byte{status}})
}

func (p *hiddenPoints) introduce(body []byte, n int) byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.introduceLocked(body, n)
}

// introduceLocked is introduce with p.mu held.
func (p *hiddenPoints) introduceLocked(body []byte, n int) byte {
	m, err := descriptor.ParseIntroduce(body)
	if err != nil {
		return descriptor.IntroAckMalformed
	}
	p.init()
	now := p.now()
	svc := p.intros[m.AuthKey]
	if svc == nil {
		return descriptor.IntroAckUnknown
	}
	svc.hs.bucket.rate, svc.hs.bucket.burst = introShare(len(p.intros))
	switch {
	case n > maxIntroducePerCir || !svc.hs.bucket.take(now):
		return descriptor.IntroAckRateLimited
	case !p.fresh(sha256.Sum256(body), now):
		return descriptor.IntroAckReplay
	}
	if !svc.hs.push(queued{rc: circuit.RelayCell{Command: descriptor.CmdIntroduce2, Body: append([]byte(nil), body...)}}) {
		return descriptor.IntroAckRateLimited
	}
	return descriptor.IntroAckOK
}

// fresh records digest and reports whether it was not seen within the
// replay window. p.mu is held.
func (p *hiddenPoints) fresh(d [32]byte, now time.Time) bool {
	if t, seen := p.replay[d]; seen && now.Sub(t) < replayWindow {
		return false
	}
	if len(p.replay) >= maxReplayEntries {
		for k, t := range p.replay {
			if now.Sub(t) >= replayWindow {
				delete(p.replay, k)
			}
		}
		if len(p.replay) >= maxReplayEntries {
			return false // full of fresh entries: refuse rather than forget
		}
	}
	p.replay[d] = now
	return true
}

func (h *hop) establishRendezvous(body []byte) error {
	cookie, err := descriptor.ParseCookie(body)
	if err != nil || h.hs.role != roleNone {
		return errors.Join(err, errHSRole)
	}
	h.startDrain()
	p := &h.r.hidden
	p.mu.Lock()
	p.init()
	_, dup := p.cookies[cookie]
	e, early := p.early[cookie]
	full := !early && len(p.cookies) >= maxWaiting
	switch {
	case early:
		delete(p.early, cookie)
		h.hs.role = roleSpliced
		h.hs.peer, e.svc.hs.peer = e.svc, h
	case !dup && !full:
		h.hs.role, h.hs.cookie = roleWaiting, cookie
		p.cookies[cookie] = h
		p.expireWaiting(h, cookie)
	}
	p.mu.Unlock()
	if dup || full {
		return errHSCookie
	}
	if err := h.originate(circuit.RelayCell{Command: descriptor.CmdRendezvousEstablished}); err != nil || !early {
		return err
	}
	return h.originate(circuit.RelayCell{Command: descriptor.CmdRendezvous2, Body: e.handshake[:]})
}

// expireWaiting tears the client circuit h down if it still waits under
// cookie after rendezvousWait. p.mu is held.
func (p *hiddenPoints) expireWaiting(h *hop, cookie [descriptor.CookieLen]byte) {
	time.AfterFunc(time.Duration(rendezvousWait.Load()), func() {
		p.mu.Lock()
		waiting := p.cookies[cookie] == h
		if waiting {
			delete(p.cookies, cookie)
		}
		p.mu.Unlock()
		if waiting {
			h.hs.push(queued{destroy: true})
		}
	})
}

// rendezvous1 joins the service's circuit h to the client circuit waiting
// with the cookie and hands the client the service's handshake.
func (h *hop) rendezvous1(body []byte) error {
	m, err := descriptor.ParseRendezvous1(body)
	if err != nil || h.hs.role != roleNone {
		return errors.Join(err, errHSRole)
	}
	h.startDrain()
	p := &h.r.hidden
	p.mu.Lock()
	p.init()
	client := p.cookies[m.Cookie]
	delete(p.cookies, m.Cookie)
	if client != nil {
		client.hs.peer, h.hs.peer = h, client
	} else if !p.holdEarly(h, m) {
		p.mu.Unlock()
		return errHSCookie
	}
	p.mu.Unlock()
	h.hs.service = true
	if client == nil {
		h.hs.role, h.hs.cookie = roleEarly, m.Cookie
		return nil
	}
	h.hs.role = roleSpliced
	rc := circuit.RelayCell{Command: descriptor.CmdRendezvous2, Body: append([]byte(nil), m.Handshake[:]...)}
	if !client.hs.push(queued{rc: rc}) {
		return errHSCookie
	}
	return nil
}

// holdEarly keeps a RENDEZVOUS1 whose cookie is not (yet) registered for
// earlyHold, then tears its circuit down. p.mu is held.
func (p *hiddenPoints) holdEarly(h *hop, m descriptor.Rendezvous1) bool {
	if _, dup := p.early[m.Cookie]; dup || len(p.early) >= maxEarly {
		return false
	}
	p.early[m.Cookie] = earlyRendezvous{svc: h, handshake: m.Handshake}
	time.AfterFunc(earlyHold, func() {
		p.mu.Lock()
		e, ok := p.early[m.Cookie]
		if ok && e.svc == h {
			delete(p.early, m.Cookie)
		}
		p.mu.Unlock()
		if ok && e.svc == h {
			h.hs.push(queued{destroy: true})
		}
	})
	return true
}

// spliceData passes an end-to-end cell to the other side of the splice.
func (h *hop) spliceData(body []byte) error {
	p := &h.r.hidden
	p.mu.Lock()
	peer := h.hs.peer
	p.mu.Unlock()
	if peer == nil {
		return errHSRole
	}
	if !peer.hs.push(queued{rc: circuit.RelayCell{Command: descriptor.CmdHSData, Body: append([]byte(nil), body...)}}) {
		return errors.New("router: spliced circuit overrun its window")
	}
	return nil
}

// push queues a cell for this state's circuit; false if the queue is
// full or the circuit is gone.
func (s *hsState) push(q queued) bool {
	if s.in == nil {
		return false
	}
	select {
	case <-s.done:
		return false
	default:
	}
	select {
	case s.in <- q:
		return true
	default:
		return false
	}
}

// startDrain starts the goroutine that sends cells other circuits queue
// for h. mu is held.
func (h *hop) startDrain() {
	if h.hs.in != nil {
		return
	}
	h.hs.in, h.hs.done = make(chan queued, spliceQueue), make(chan struct{})
	h.hs.paid = sync.NewCond(&h.mu)
	h.r.work.Add(1)
	go h.drain(h.hs.in, h.hs.done)
}

func (h *hop) drain(in chan queued, done chan struct{}) {
	defer h.r.work.Done()
	for {
		select {
		case <-done:
			return
		case q := <-in:
			if q.destroy {
				h.destroy(circuit.DestroyDestroyed)
				return
			}
			if !h.sendQueued(q.rc) {
				h.destroy(circuit.DestroyDestroyed)
				return
			}
		}
	}
}

// sendQueued sends a cell another circuit queued for h. HS_DATA waits
// while h is paused for payment, and is counted only on the client's
// side of the splice.
func (h *hop) sendQueued(rc circuit.RelayCell) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	data := rc.Command == descriptor.CmdHSData
	for data && h.unpaid && !h.closed {
		h.hs.paid.Wait()
	}
	if h.closed || h.prev == nil {
		return true
	}
	if rc.Command == descriptor.CmdRendezvous2 {
		h.hs.role = roleSpliced
	}
	_, err := h.originateMetered(rc, !(data && h.hs.service))
	return err == nil
}

// ridesFree reports whether a cell from the previous hop goes unmetered:
// HS_DATA from the service's side of a splice, which the client's side
// pays for when it leaves towards the client. mu is held.
func (h *hop) ridesFree(act circuit.Action) bool {
	return act.Kind == circuit.ActDeliver && act.Cell.Command == descriptor.CmdHSData && h.hs != nil && h.hs.service
}

// paidAgain wakes a drain waiting for h to be paid (or closed). mu is
// held.
func (h *hop) paidAgain() {
	if h.hs != nil && h.hs.paid != nil {
		h.hs.paid.Broadcast()
	}
}

// fetch looks a descriptor up in the DHT for the client and sends it back
// in HS_FETCHED chunks. One fetch at a time per circuit.
func (h *hop) fetch(body []byte) error {
	idx, err := descriptor.ParseHSFetch(body)
	if err != nil || h.hs.role != roleNone || h.hs.fetching {
		return errors.Join(err, errHSRole)
	}
	var rec []byte
	var ferr error
	started := h.dirOp(func(ctx context.Context, dir HSDirectory) {
		rec, ferr = dir.FetchHS(ctx, idx)
	}, func() { h.answerFetch(rec, ferr) })
	if !started {
		return h.originate(circuit.RelayCell{Command: descriptor.CmdHSFetched,
			Body: descriptor.HSFetched{Status: descriptor.FetchUnavailable}.Marshal()})
	}
	return nil
}

// dirOp runs op against the relay's DHT directory off the circuit's
// goroutine, holding one of the relay's maxFetches slots, then calls
// answer with h.mu held unless the circuit has closed meanwhile. It
// reports false, starting nothing, if there is no directory or no free
// slot. h.mu is held.
func (h *hop) dirOp(op func(context.Context, HSDirectory), answer func()) bool {
	p := &h.r.hidden
	p.mu.Lock()
	dir, busy := p.dir, p.fetches >= maxFetches
	if dir != nil && !busy {
		p.fetches++
	}
	p.mu.Unlock()
	if dir == nil || busy {
		return false
	}
	h.hs.fetching = true
	h.r.work.Add(1)
	go func() {
		defer h.r.work.Done()
		ctx, cancel := context.WithTimeout(context.Background(), fetchTimeout)
		op(ctx, dir)
		cancel()
		p.mu.Lock()
		p.fetches--
		p.mu.Unlock()
		h.mu.Lock()
		defer h.mu.Unlock()
		h.hs.fetching = false
		if !h.closed {
			answer()
		}
	}()
	return true
}

// answerFetch sends a fetched record back in chunks, or not-found. h.mu
// is held.
func (h *hop) answerFetch(rec []byte, err error) {
	if err != nil || len(rec) == 0 || len(rec) > descriptor.MaxSize {
		h.originate(circuit.RelayCell{Command: descriptor.CmdHSFetched,
			Body: descriptor.HSFetched{Status: descriptor.FetchNotFound}.Marshal()})
		return
	}
	for off := 0; off < len(rec); off += descriptor.MaxHSFetchChunk {
		chunk := rec[off:min(off+descriptor.MaxHSFetchChunk, len(rec))]
		m := descriptor.HSFetched{Total: uint16(len(rec)), Chunk: chunk}
		if h.originate(circuit.RelayCell{Command: descriptor.CmdHSFetched, Body: m.Marshal()}) != nil {
			return
		}
	}
}

// storeChunk collects an HS_STORE record and stores it once complete.
func (h *hop) storeChunk(body []byte) error {
	m, err := descriptor.ParseHSFetched(body)
	s := h.hs
	if err != nil || m.Status != descriptor.FetchOK || s.role != roleNone || s.fetching ||
		(len(s.store) > 0 && int(m.Total) != s.storeTotal) || len(s.store)+len(m.Chunk) > int(m.Total) {
		return errors.Join(err, errHSRole)
	}
	s.store, s.storeTotal = append(s.store, m.Chunk...), int(m.Total)
	if len(s.store) < s.storeTotal {
		return nil
	}
	rec := s.store
	s.store, s.storeTotal = nil, 0
	var serr error
	started := h.dirOp(func(ctx context.Context, dir HSDirectory) {
		serr = dir.StoreHS(ctx, rec)
	}, func() {
		status := byte(descriptor.StoreOK)
		if serr != nil {
			status = descriptor.StoreRejected
		}
		h.originate(circuit.RelayCell{Command: descriptor.CmdHSStored, Body: []byte{status}})
	})
	if !started {
		return h.originate(circuit.RelayCell{Command: descriptor.CmdHSStored, Body: []byte{descriptor.StoreUnavailable}})
	}
	return nil
}

// closeHidden forgets h's registrations and tears the other side of a
// splice down. mu is held.
func (h *hop) closeHidden() {
	s := h.hs
	if s == nil {
		return
	}
	p := &h.r.hidden
	p.mu.Lock()
	if s.role == roleIntro && p.intros[s.auth] == h {
		delete(p.intros, s.auth)
	}
	if s.role == roleWaiting && p.cookies[s.cookie] == h {
		delete(p.cookies, s.cookie)
	}
	if e, ok := p.early[s.cookie]; ok && s.role == roleEarly && e.svc == h {
		delete(p.early, s.cookie)
	}
	peer := s.peer
	s.peer = nil
	if peer != nil {
		peer.hs.peer = nil
	}
	p.mu.Unlock()
	if peer != nil && !peer.hs.push(queued{destroy: true}) {
		h.r.work.Add(1)
		go func() { defer h.r.work.Done(); peer.destroy(circuit.DestroyDestroyed) }()
	}
	if s.done != nil {
		close(s.done)
	}
	h.paidAgain()
}

// bucket is a token bucket.
type bucket struct {
	rate, burst float64
	tokens      float64
	last        time.Time
}

func (b *bucket) take(now time.Time) bool {
	if b.last.IsZero() {
		b.tokens = b.burst
	} else {
		b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	}
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
