package bench

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/obolnet/obol/circuit/link"
	"github.com/obolnet/obol/descriptor"
	"github.com/obolnet/obol/dht"
	"github.com/obolnet/obol/hidden"
)

// hiddenHops is the length of every hidden-service circuit.
const hiddenHops = 3

// Names of the hidden-service first-byte scenarios.
const (
	TTFBHiddenCold = "hidden service, cold"
	TTFBHiddenWarm = "hidden service, warm"
)

// hiddenNet gives the network's relays what hidden services need: each a
// DHT server on a host of its own that stores hidden-service records,
// and a descriptor (guard, intro and rendezvous point) in a static
// directory the service and the client choose paths from. The DHT's own
// traffic between relays runs over plain loopback.
type hiddenNet struct {
	descs   []*descriptor.Relay
	closers []func()
}

func (h *hiddenNet) Relays() []*descriptor.Relay { return h.descs }

func (h *hiddenNet) Close() {
	for i := len(h.closers) - 1; i >= 0; i-- {
		h.closers[i]()
	}
	h.closers = nil
}

func startHiddenNet(ctx context.Context, nw *testnet) (*hiddenNet, error) {
	hn := &hiddenNet{}
	var boot []peer.AddrInfo
	for _, r := range nw.Relays {
		node, err := hn.startDHT(ctx, boot)
		if err != nil {
			hn.Close()
			return nil, err
		}
		if boot == nil {
			boot = []peer.AddrInfo{{ID: node.Host().ID(), Addrs: node.Host().Addrs()}}
		}
		r.Router.SetHSDirectory(hidden.DHTDirectory{Node: node})
		hn.descs = append(hn.descs, r.Desc)
	}
	return hn, nil
}

// startDHT starts a DHT server joined through boot.
func (hn *hiddenNet) startDHT(ctx context.Context, boot []peer.AddrInfo) (*dht.Node, error) {
	h, err := newHost()
	if err != nil {
		return nil, err
	}
	node, err := dht.Open(h, dht.Config{Mode: dht.ModeServer, Bootstrap: boot})
	if err != nil {
		h.Close()
		return nil, err
	}
	hn.closers = append(hn.closers, func() { node.Close(); h.Close() })
	if len(boot) > 0 {
		bctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		if err := node.Bootstrap(bctx); err != nil {
			return nil, fmt.Errorf("bench: DHT bootstrap: %w", err)
		}
	}
	return node, nil
}

// endpoint is a new node that builds circuits: the service or the client.
func (hn *hiddenNet) endpoint() (hidden.Config, error) {
	h, err := newHost()
	if err != nil {
		return hidden.Config{}, err
	}
	lm := link.NewManager(h, link.Config{})
	lm.Start()
	hn.closers = append(hn.closers, func() { lm.Close(); h.Close() })
	return hidden.Config{Links: lm, Directory: hn}, nil
}

// measureHidden times a hidden service's first byte: cold (nothing
// cached: descriptor fetched through a circuit, rendezvous, introduction)
// and warm (a new stream on the session already joined).
func (b *run) measureHidden(ctx context.Context) error {
	b.step("hidden service: publishing")
	hn, err := startHiddenNet(ctx, b.net)
	if err != nil {
		return b.hiddenFailed(err)
	}
	defer hn.Close()
	l, err := hn.listen(ctx)
	if err != nil {
		return b.hiddenFailed(err)
	}
	defer l.Close()
	go serveFixed(l)
	cn, err := hn.endpoint()
	if err != nil {
		return b.hiddenFailed(err)
	}
	c, err := hidden.NewConnector(cn)
	if err != nil {
		return b.hiddenFailed(err)
	}
	defer c.Close()
	var samples [2][]float64
	for i := range b.cfg.HiddenSamples() {
		for k, name := range []string{TTFBHiddenCold, TTFBHiddenWarm} {
			b.step(fmt.Sprintf("first byte: %s (%d/%d)", name, i+1, b.cfg.HiddenSamples()))
			if k == 0 {
				c.Forget(l.Address())
			}
			d, err := hiddenFirstByte(ctx, c, l.Address())
			if err != nil {
				return b.hiddenFailed(fmt.Errorf("%s: %w", name, err))
			}
			samples[k] = append(samples[k], ms(d))
		}
	}
	b.rep.TTFB = append(b.rep.TTFB, newSeries(TTFBHiddenCold, false, samples[0]), newSeries(TTFBHiddenWarm, false, samples[1]))
	b.rep.Hidden = &Hidden{Measured: true, JoinedRTTms: ms(4 * hiddenHops * b.cfg.Link.Delay),
		Note: "the client's and the service's circuits have 3 hops each (the hidden package's fixed length), the rendezvous point being the last of both; DHT lookups between relays are not delayed"}
	return nil
}

// hiddenFailed records why the hidden-service scenario has no figures;
// the rest of the run goes on.
func (b *run) hiddenFailed(err error) error {
	b.rep.Hidden = &Hidden{Note: "failed: " + err.Error()}
	return nil
}

func (hn *hiddenNet) listen(ctx context.Context) (*hidden.Listener, error) {
	sn, err := hn.endpoint()
	if err != nil {
		return nil, err
	}
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	lctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	return hidden.Listen(lctx, hidden.ServiceConfig{Config: sn, Key: key})
}

func hiddenFirstByte(ctx context.Context, c *hidden.Connector, addr string) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	start := time.Now()
	conn, err := c.Dial(ctx, "tcp", addr+":80")
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("GET\n")); err != nil {
		return 0, err
	}
	err = firstByte(conn)
	return time.Since(start), err
}

// serveFixed answers each connection's 4-byte request with 1 KiB.
func serveFixed(l net.Listener) {
	answer := make([]byte, ttfbSize)
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		conn, err := l.Accept()
		if err != nil {
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer conn.Close()
			var req [4]byte
			if _, err := io.ReadFull(conn, req[:]); err != nil {
				return
			}
			conn.Write(answer)
			io.Copy(io.Discard, conn)
		}()
	}
}
