package relaynet

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/obolnet/obol/descriptor"
)

// Directory is a static directory of a network's relays: a
// router.Directory (where each relay's next hop is) and a client
// Directory (the relays' descriptors, unsigned).
type Directory struct {
	mu    sync.Mutex // guards the fields below and the descriptors' fields
	addrs map[peer.ID]peer.AddrInfo
	descs []*descriptor.Relay
}

// NewDirectory is an empty directory.
func NewDirectory() *Directory { return &Directory{addrs: map[peer.ID]peer.AddrInfo{}} }

// AddrInfo is where relay id is reached.
func (d *Directory) AddrInfo(_ context.Context, id peer.ID) (peer.AddrInfo, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	ai, ok := d.addrs[id]
	if !ok {
		return ai, fmt.Errorf("relaynet: unknown relay %s", id)
	}
	return ai, nil
}

// AddrInfos are the addresses of every peer the directory resolves.
func (d *Directory) AddrInfos() []peer.AddrInfo {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]peer.AddrInfo, 0, len(d.addrs))
	for _, ai := range d.addrs {
		out = append(out, ai)
	}
	return out
}

// Relays are the descriptors of the relays listed.
func (d *Directory) Relays() []*descriptor.Relay {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.descs)
}

// Edit runs f over the listed descriptors, under the directory's lock.
func (d *Directory) Edit(f func(descs []*descriptor.Relay)) {
	d.mu.Lock()
	defer d.mu.Unlock()
	f(d.descs)
}

// Unlist takes relay id's descriptor out of the list; its next hop is
// still resolved.
func (d *Directory) Unlist(id peer.ID) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.descs = slices.DeleteFunc(d.descs, func(r *descriptor.Relay) bool { return r.PeerID == id })
}

// Set makes id reached at addrs.
func (d *Directory) Set(id peer.ID, addrs []ma.Multiaddr) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.addrs[id] = peer.AddrInfo{ID: id, Addrs: addrs}
}

// List lists desc, in place of an earlier descriptor of the same relay.
func (d *Directory) List(desc *descriptor.Relay) { d.replace(desc.PeerID, desc) }

// replace lists desc in place of old's descriptor (a relay restarted on a
// new host).
func (d *Directory) replace(old peer.ID, desc *descriptor.Relay) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for i, r := range d.descs {
		if r.PeerID == old {
			d.descs[i] = desc
			return
		}
	}
	d.descs = append(d.descs, desc)
}
