package hidden_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/obolnet/obol/circuit"
	"github.com/obolnet/obol/circuit/client"
	"github.com/obolnet/obol/circuit/link"
	"github.com/obolnet/obol/descriptor"
	"github.com/obolnet/obol/dht/dhttest"
	"github.com/obolnet/obol/hidden"
	"github.com/obolnet/obol/router"
)

// The circuit-type experiment (specs/12-padding.md, "Measurements"):
// circuits to exits and hidden-service circuits, traced as the client's
// guard sees them on its link, classified by k-NN.

// cellEvent is one cell on a traced link.
type cellEvent struct {
	at  time.Duration // since the circuit's first cell
	out bool          // client → guard
	cmd circuit.Command
}

// tracer records the cells of every circuit on a client's links.
type tracer struct {
	mu    sync.Mutex
	start map[traceKey]time.Time
	circs map[traceKey][]cellEvent
	order []traceKey
}

type traceKey struct {
	ch *link.Channel
	id uint32
}

func newTracer() *tracer {
	return &tracer{start: map[traceKey]time.Time{}, circs: map[traceKey][]cellEvent{}}
}

func (tr *tracer) record(ch *link.Channel, out bool, id uint32, cmd circuit.Command) {
	if id == 0 {
		return // link cells: no circuit
	}
	now := time.Now()
	k := traceKey{ch, id}
	tr.mu.Lock()
	defer tr.mu.Unlock()
	t0, ok := tr.start[k]
	if !ok {
		t0 = now
		tr.start[k] = now
		tr.order = append(tr.order, k)
	}
	tr.circs[k] = append(tr.circs[k], cellEvent{now.Sub(t0), out, cmd})
}

// take returns the traces recorded so far and forgets them.
func (tr *tracer) take() [][]cellEvent {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	var out [][]cellEvent
	for _, k := range tr.order {
		out = append(out, tr.circs[k])
	}
	tr.start, tr.circs, tr.order = map[traceKey]time.Time{}, map[traceKey][]cellEvent{}, nil
	return out
}

// newExpNet is newTestNet with every relay an exit too.
func newExpNet(t testing.TB, n int) *testNet {
	tn := &testNet{t: t, dir: &directory{addrs: map[peer.ID]peer.AddrInfo{}, descs: map[peer.ID]*descriptor.Relay{}}}
	tn.dhtNet = dhttest.NewNetwork(t, n, dhttest.Options{})
	now := time.Now()
	pol, err := router.ParseExitPolicy([]string{"accept *:*"}, router.AllowLoopback())
	if err != nil {
		t.Fatal(err)
	}
	for _, dr := range tn.dhtNet.Relays {
		onion, err := circuit.GenerateOnionKey(rand.Reader, 1)
		if err != nil {
			t.Fatal(err)
		}
		h := newHost(t)
		rt, err := router.New(h, router.Config{OnionKeys: []circuit.OnionKey{onion}, Directory: tn.dir, Exit: pol})
		if err != nil {
			t.Fatal(err)
		}
		rt.SetHSDirectory(hidden.DHTDirectory{Node: dr.Node})
		ctx, cancel := context.WithCancel(context.Background())
		r := &relay{dht: dr, host: h, router: rt, cancel: cancel, done: make(chan struct{})}
		go func() { defer close(r.done); rt.Run(ctx) }()
		d := dhttest.Describe(h, descriptor.RoleRelay|descriptor.RoleGuard|descriptor.RoleIntro|descriptor.RoleRendezvous|descriptor.RoleExit)
		d.OnionKeys = []descriptor.OnionKey{{Key: onion.Public, NotAfter: now.Add(24 * time.Hour).Unix()}}
		tn.dir.addrs[h.ID()] = peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()}
		tn.dir.descs[h.ID()] = d
		tn.relays = append(tn.relays, r)
	}
	t.Cleanup(func() {
		for _, r := range tn.relays {
			r.stop()
		}
	})
	return tn
}

// tracedEndpoint is tn.endpoint with its links traced.
func (tn *testNet) tracedEndpoint(tr *tracer) hidden.Network {
	h := newHost(tn.t)
	lm := link.NewManager(h, link.Config{Trace: tr.record, Padding: link.PaddingConfig{Mode: link.PaddingOff}})
	lm.Start()
	tn.t.Cleanup(func() { lm.Close() })
	return hidden.Network{Links: lm, Directory: tn.dir}
}

// hop is relay i as a path hop.
func (tn *testNet) hop(i int) client.Hop {
	r := tn.relays[i]
	d := tn.dir.descs[r.id()]
	return client.Hop{Peer: tn.dir.addrs[r.id()], OnionKey: d.OnionKeys[0].Key}
}

// page serves a synthetic page of size bytes at /<size>.
func pageServer(t testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Path[1:])
		w.Write(make([]byte, n))
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return l.Addr().String()
}

// fetchExit builds a circuit through relays g, m, e and fetches size
// bytes from the page server through it.
func fetchExit(ctx context.Context, n hidden.Network, tn *testNet, g, m, e int, server string, size int) error {
	c, err := client.Build(ctx, n.Links, []client.Hop{tn.hop(g), tn.hop(m), tn.hop(e)})
	if err != nil {
		return err
	}
	defer c.Close()
	host, port, _ := net.SplitHostPort(server)
	p, _ := strconv.Atoi(port)
	s, err := c.Dial(ctx, host, uint16(p))
	if err != nil {
		return err
	}
	defer s.Close()
	fmt.Fprintf(s, "GET /%d HTTP/1.0\r\nHost: x\r\n\r\n", size)
	_, err = io.Copy(io.Discard, s)
	return err
}

// fetchHidden fetches size bytes from the service at addr with a fresh
// client.
func fetchHidden(t testing.TB, n hidden.Network, addr string, size int) error {
	c, err := hidden.NewClient(n)
	if err != nil {
		return err
	}
	defer c.Close()
	hc := &http.Client{Transport: &http.Transport{DialContext: c.Dial, DisableKeepAlives: true}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+addr+"/"+strconv.Itoa(size), nil)
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body)
	return err
}

func TestDumpTraces(t *testing.T) {
	tn := newExpNet(t, 6)
	server := pageServer(t)
	tr := newTracer()
	n := tn.tracedEndpoint(tr)
	ctx := context.Background()
	if err := fetchExit(ctx, n, tn, 0, 1, 2, server, 5000); err != nil {
		t.Fatal(err)
	}
	for _, tc := range tr.take() {
		t.Logf("exit: %v", tc)
	}
	sn, _ := tn.endpoint()
	l, err := hidden.Listen(ctx, hidden.ServiceConfig{Network: sn, Key: newKey(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		k, _ := strconv.Atoi(r.URL.Path[1:])
		w.Write(make([]byte, k))
	})}
	go srv.Serve(l)
	defer srv.Close()
	if err := fetchHidden(t, n, l.Address(), 5000); err != nil {
		t.Fatal(err)
	}
	for _, tc := range tr.take() {
		t.Logf("hs: %v", tc)
	}
}
