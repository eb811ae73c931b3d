package hidden

import (
	"context"
	"crypto/rand"
	"errors"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	yamux "github.com/libp2p/go-yamux/v5"

	"github.com/obolnet/obol/circuit"
	"github.com/obolnet/obol/circuit/client"
	"github.com/obolnet/obol/descriptor"
)

// introPoint is one of the service's intro circuits.
type introPoint struct {
	relay client.Hop
	keys  *introKeys
	c     *client.Circuit

	mu   sync.Mutex // guards seen
	seen map[[32]byte]time.Time
}

func (ip *introPoint) point() descriptor.IntroPoint {
	return descriptor.IntroPoint{Relay: ip.relay.Peer.ID, OnionKey: ip.relay.OnionKey,
		AuthKey: ip.keys.authPub(), EncKey: [32]byte(ip.keys.enc.Public)}
}

// fresh reports whether the client ephemeral key e was not seen before at
// this intro point (the intro point has a replay cache too; this one
// holds even if the intro point does not).
func (ip *introPoint) fresh(e [32]byte, now time.Time) bool {
	ip.mu.Lock()
	defer ip.mu.Unlock()
	if _, ok := ip.seen[e]; ok {
		return false
	}
	if len(ip.seen) > 1<<16 {
		for k, t := range ip.seen {
			if now.Sub(t) > time.Hour {
				delete(ip.seen, k)
			}
		}
	}
	ip.seen[e] = now
	return true
}

// addIntro establishes one more intro point at a relay that offers the
// role and is not already one of ours, nor being made one by a concurrent
// call (a service's intro points are on distinct relays: else the loss
// of one relay would take two of them). runCtx bounds the intro circuit's
// watcher.
func (l *Listener) addIntro(ctx, runCtx context.Context) bool {
	l.mu.Lock()
	exclude := map[peer.ID]bool{}
	for _, ip := range l.intros {
		exclude[ip.relay.Peer.ID] = true
	}
	for id := range l.choosing {
		exclude[id] = true
	}
	path, err := l.cfg.pathTo(nil, descriptor.RoleIntro, exclude)
	if err == nil {
		if l.choosing == nil {
			l.choosing = map[peer.ID]bool{}
		}
		l.choosing[path[len(path)-1].Peer.ID] = true
		defer func() {
			l.mu.Lock()
			delete(l.choosing, path[len(path)-1].Peer.ID)
			l.mu.Unlock()
		}()
	}
	l.mu.Unlock()
	if err != nil {
		l.cfg.Logger.Debug("intro point not established", "err", err)
		return false
	}
	ip, err := l.establish(ctx, path)
	if err != nil {
		l.cfg.Logger.Debug("intro point not established", "err", err)
		return false
	}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		ip.c.Close()
		return false
	}
	l.intros = append(l.intros, ip)
	l.mu.Unlock()
	go func() {
		select {
		case <-ip.c.Done():
			select {
			case l.lost <- ip:
			case <-runCtx.Done():
			}
		case <-runCtx.Done():
		}
	}()
	return true
}

// establish builds a circuit through path and makes its last relay an
// intro point of the service.
func (l *Listener) establish(ctx context.Context, path []client.Hop) (*introPoint, error) {
	keys, err := newIntroKeys(rand.Reader)
	if err != nil {
		return nil, err
	}
	c, err := l.cfg.build(ctx, path)
	if err != nil {
		return nil, err
	}
	ip := &introPoint{relay: path[len(path)-1], keys: keys, c: c, seen: map[[32]byte]time.Time{}}
	k := attach(c)
	k.handle(descriptor.CmdIntroduce2, func(b []byte) { l.introduced(ip, append([]byte(nil), b...)) })
	ch := k.expect(descriptor.CmdIntroEstablished, 1)
	m := descriptor.NewEstablishIntro(keys.auth, l.cfg.Now())
	if err := k.send(ctx, descriptor.CmdEstablishIntro, m.Marshal()); err != nil {
		c.Close()
		return nil, err
	}
	b, err := k.wait(ctx, ch)
	if err == nil && (len(b) != 1 || b[0] != 0) {
		err = errors.New("hidden: intro point refused the auth key")
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	go l.cfg.padSetup(c) // a request and its response, as on an exit circuit
	return ip, nil
}

// introduced handles an INTRODUCE2: it refuses a malformed, misaddressed
// or replayed one, or one whose handshake does not open, at once, and
// queues the others for a rendezvous by the effort they proved
// (admit.go, pow.go).
func (l *Listener) introduced(ip *introPoint, body []byte) {
	m, err := descriptor.ParseIntroduce(body)
	if err != nil || m.AuthKey != ip.keys.authPub() || !ip.fresh([32]byte(m.Handshake[:32]), l.cfg.Now()) {
		l.adm.refused()
		return
	}
	acc, err := acceptHandshake(rand.Reader, ip.keys, l.addr, m.Handshake)
	if err != nil {
		l.adm.refused()
		return
	}
	effort := l.pow.effortOf(acc.payload.PoW, l.addr, acc.payload.Cookie)
	l.adm.add(l.runCtx, &pendingIntro{ip: ip, acc: acc, effort: effort, arrived: l.cfg.Now()})
}

// rendezvous answers a client: handshake, circuit to its rendezvous
// point (if that point has a place, claim), RENDEZVOUS1, then streams
// from the joined circuit.
func (l *Listener) rendezvous(ctx context.Context, it *pendingIntro, claim func(peer.ID) bool) error {
	acc := it.acc
	if !claim(acc.payload.Relay) {
		return errBusy
	}
	ctx, cancel := context.WithTimeout(ctx, l.cfg.RendezvousTimeout)
	defer cancel()
	rp := client.Hop{Peer: peer.AddrInfo{ID: acc.payload.Relay}, OnionKey: acc.payload.OnionKey}
	// RENDEZVOUS1 rides behind the CREATE; the tunnel takes the client's
	// cells from the moment the circuit exists.
	var t *tunnel
	n := l.cfg.forRendezvous()
	c, _, err := n.buildToWith(ctx, &rp, 0, nil, func(k *control) []circuit.RelayCell {
		t = newTunnel(k.c, acc.send, acc.recv, true)
		k.handle(descriptor.CmdHSData, t.onCell)
		r1 := descriptor.Rendezvous1{Cookie: acc.payload.Cookie, Handshake: acc.reply}
		return []circuit.RelayCell{cell(descriptor.CmdRendezvous1, r1.Marshal())}
	})
	if err != nil {
		return err
	}
	s, err := yamux.Server(t, yamuxConfig(), nil)
	if err != nil {
		c.Close()
		return err
	}
	if !l.track(s) {
		s.Close()
		return errors.New("hidden: service closed")
	}
	l.work.Add(1) // under a rendezvous slot: before shutdown's Wait
	go l.serve(s)
	return nil
}

func (l *Listener) track(s *yamux.Session) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	l.sessions[s] = struct{}{}
	return true
}

// serve accepts the streams of one client session.
func (l *Listener) serve(s *yamux.Session) {
	defer l.work.Done()
	defer func() {
		s.Close()
		l.mu.Lock()
		delete(l.sessions, s)
		l.mu.Unlock()
	}()
	local := Addr{Service: l.addr.String()}
	for {
		st, err := s.AcceptStream()
		if err != nil {
			return
		}
		go func() {
			port, err := readPort(st)
			if err != nil {
				st.Reset()
				return
			}
			c := &Conn{Stream: st, local: Addr{Service: local.Service, Port: port}, remote: Addr{Service: "client"}, port: port}
			select {
			case l.accept <- c:
			case <-l.done:
				st.Reset()
			}
		}()
	}
}
