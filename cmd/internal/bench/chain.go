package bench

import (
	"context"
	"io"
	"net"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	ma "github.com/multiformats/go-multiaddr"
)

const chainProto = protocol.ID("/obol-bench/chain/1")

// chain is the baseline a circuit is measured against: n libp2p hosts
// over the same transport, each forwarding a stream to the next and the
// last to the TCP server, copying bytes both ways — no cells, no
// encryption beyond the transport's, no flow control beyond the stream's.
type chain struct {
	hosts   []host.Host
	client  host.Host
	closers []func()
}

func startChain(n int, l Link, target string) (*chain, error) {
	c := &chain{}
	addrs := make([][]ma.Multiaddr, n)
	for i := range n {
		h, err := newHost()
		if err != nil {
			c.Close()
			return nil, err
		}
		c.hosts = append(c.hosts, h)
		addrs[i] = h.Addrs()
		a, closer, err := l.Front(h)
		if err != nil {
			c.Close()
			return nil, err
		}
		if closer != nil {
			c.closers = append(c.closers, closer)
			addrs[i] = []ma.Multiaddr{a}
		}
	}
	for i, h := range c.hosts {
		var next peer.AddrInfo
		if i+1 < n {
			next = peer.AddrInfo{ID: c.hosts[i+1].ID(), Addrs: addrs[i+1]}
			h.Peerstore().AddAddrs(next.ID, next.Addrs, time.Hour)
		}
		h.SetStreamHandler(chainProto, func(s network.Stream) { forward(h, s, next.ID, target) })
	}
	ch, err := newHost()
	if err != nil {
		c.Close()
		return nil, err
	}
	c.client = ch
	ch.Peerstore().AddAddrs(c.hosts[0].ID(), addrs[0], time.Hour)
	return c, nil
}

// forward copies s to the next host (or to target, from the last host)
// and back.
func forward(h host.Host, s network.Stream, next peer.ID, target string) {
	var out io.ReadWriteCloser
	var err error
	if next == "" {
		out, err = net.Dial("tcp", target)
	} else {
		out, err = h.NewStream(context.Background(), next, chainProto)
	}
	if err != nil {
		s.Reset()
		return
	}
	go func() { io.Copy(out, s); closeWrite(out) }()
	io.Copy(s, out)
	s.Close()
	out.Close()
}

func closeWrite(c io.Closer) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
}

// open opens a stream through the whole chain.
func (c *chain) open(ctx context.Context) (network.Stream, error) {
	return c.client.NewStream(ctx, c.hosts[0].ID(), chainProto)
}

// Close stops the hosts and forwarders; idempotent.
func (c *chain) Close() {
	if c.client != nil {
		c.client.Close()
		c.client = nil
	}
	for _, h := range c.hosts {
		h.Close()
	}
	c.hosts = nil
	for _, f := range c.closers {
		f()
	}
	c.closers = nil
}
