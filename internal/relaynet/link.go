package relaynet

import (
	"crypto/rand"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/obolnet/obol/circuit/circuittest"
	"github.com/obolnet/obol/descriptor"
)

var randReader = rand.Reader

// Link is the emulated link in front of every relay: one-way delay, loss
// and a bandwidth limit per direction. The zero Link is plain loopback.
type Link struct {
	Delay     time.Duration `json:"delay_ns"`
	Loss      float64       `json:"loss"`
	Bandwidth int64         `json:"bandwidth_Bps"` // bytes per second; 0 unlimited
}

func (l Link) emulated() bool { return l.Delay > 0 || l.Loss > 0 || l.Bandwidth > 0 }

// String describes the emulated link.
func (l Link) String() string {
	if !l.emulated() {
		return "plain loopback"
	}
	s := fmt.Sprintf("%v one-way", l.Delay)
	if l.Loss > 0 {
		s += fmt.Sprintf(", %.2f%% loss", 100*l.Loss)
	}
	if l.Bandwidth > 0 {
		s += fmt.Sprintf(", %.1f MB/s", float64(l.Bandwidth)/1e6)
	}
	return s + " per link"
}

// front puts relay r behind a forwarder emulating the network's link, if
// the link is not plain loopback: clients and relays then dial the
// forwarder only.
func (nw *Network) front(r *Relay) error {
	return nw.Delay(r, nw.opts.Link)
}

// Delay puts relay r behind a forwarder emulating l (nothing for plain
// loopback); clients and relays then dial the forwarder only.
func (nw *Network) Delay(r *Relay, l Link) error {
	addr, closer, err := l.Front(r.Host)
	if err != nil || closer == nil {
		return err
	}
	r.Defer(closer)
	r.Addrs = []ma.Multiaddr{addr}
	nw.Dir.Set(r.Host.ID(), r.Addrs)
	if r.Desc != nil {
		nw.Dir.Edit(func([]*descriptor.Relay) { r.Desc.Addrs = [][]byte{addr.Bytes()} })
	}
	return nil
}

// Front starts a delaying forwarder emulating l in front of h's QUIC
// address and returns the forwarder's address and its closer; nothing
// (a nil closer) for plain loopback.
func (l Link) Front(h host.Host) (ma.Multiaddr, func(), error) {
	if !l.emulated() {
		return nil, nil, nil
	}
	var port string
	for _, a := range h.Addrs() {
		if p, err := a.ValueForProtocol(ma.P_UDP); err == nil {
			if _, err := a.ValueForProtocol(ma.P_QUIC_V1); err == nil {
				port = p
			}
		}
	}
	if port == "" {
		return nil, nil, fmt.Errorf("relaynet: host %s has no QUIC address", h.ID())
	}
	var opts []circuittest.DelayOption
	if l.Loss > 0 {
		opts = append(opts, circuittest.WithLoss(l.Loss))
	}
	if l.Bandwidth > 0 {
		opts = append(opts, circuittest.WithBandwidth(l.Bandwidth))
	}
	d, err := circuittest.NewDelayUDP("127.0.0.1:"+port, l.Delay, opts...)
	if err != nil {
		return nil, nil, err
	}
	a := ma.StringCast(fmt.Sprintf("/ip4/127.0.0.1/udp/%d/quic-v1", d.AddrPort().Port()))
	return a, func() { d.Close() }, nil
}
