// Package descriptor defines obol's signed records: the relay descriptor a
// relay publishes into the DHT, and the errors that reject a bad one.
//
// A record read from the network is decoded into an Unverified value, which
// offers nothing but Verify. Only Verify(now) yields a usable *Relay: the
// signature, the binding of the signing key to the peer ID, the validity
// times, the size and the range of every field have all been checked.
// specs/01-descriptor.md is the byte-level definition.
package descriptor

import (
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Version is the relay descriptor format this package writes and accepts.
const Version = 1

// Limits that Verify enforces. They are part of the format: changing one is
// a protocol change (specs/01-descriptor.md, "Field ranges").
const (
	MaxSize        = 4096               // encoded record, signature included
	MaxLifetime    = 6 * 24 * time.Hour // expiry at most this far ahead of now and of publish time
	MaxClockSkew   = 5 * time.Minute    // publish time may be this far in the future
	MaxAddrs       = 8                  // advertised multiaddrs
	MaxAddrLen     = 128                // bytes of one binary multiaddr
	MaxOnionKeys   = 8                  // current key, those of the coming intervals, and the last one
	MaxPortRanges  = 64                 // exit port summary entries
	MaxMints       = 4                  // accepted mints
	MaxKeysets     = 8                  // keysets per mint
	MaxURLLen      = 200                // bytes of a mint URL
	MaxFamily      = 16                 // declared family members
	MaxSoftwareLen = 64                 // bytes of the software string
	MaxProtocols   = 8                  // protocol versions
	OnionKeySize   = 32                 // X25519 public key
	ReceiverKeyLen = 33                 // compressed secp256k1 point
	MaxGrace       = 10 * time.Minute   // longest grace period a relay may advertise
)

// Role is a bit set of what a relay offers.
type Role uint16

// Roles. A relay always forwards cells; the other roles are offered in
// addition.
const (
	RoleRelay      Role = 1 << iota // forwards cells (middle hop)
	RoleGuard                       // accepts circuits straight from clients
	RoleExit                        // opens TCP streams to the outside
	RoleIntro                       // hidden-service introduction point
	RoleRendezvous                  // hidden-service rendezvous point

	knownRoles = RoleRelay | RoleGuard | RoleExit | RoleIntro | RoleRendezvous
)

// Has reports whether every role in q is in r.
func (r Role) Has(q Role) bool { return r&q == q }

// String names the roles, e.g. "relay,guard,exit".
func (r Role) String() string {
	names := []string{"relay", "guard", "exit", "intro", "rendezvous"}
	s := ""
	for i, n := range names {
		if r&(1<<i) != 0 {
			if s != "" {
				s += ","
			}
			s += n
		}
	}
	if s == "" {
		return "none"
	}
	return s
}

// OnionKey is an X25519 public key the relay answers circuit handshakes
// with, and the last second (Unix time) at which it does.
type OnionKey struct {
	Key      [OnionKeySize]byte `cbor:"1,keyasint"`
	NotAfter int64              `cbor:"2,keyasint"`
}

// PortRange is an inclusive range of TCP ports, Lo ≥ 1.
type PortRange struct {
	Lo uint16 `cbor:"1,keyasint"`
	Hi uint16 `cbor:"2,keyasint"`
}

// Price is what a relay charges, in millisatoshi.
type Price struct {
	PerMiB     uint64 `cbor:"1,keyasint,omitempty"` // per MiB of cells forwarded
	PerCircuit uint64 `cbor:"2,keyasint,omitempty"` // per circuit built
}

// AcceptedMint is one Cashu mint the relay accepts, with the unit and
// keyset IDs (hex) it takes from it.
type AcceptedMint struct {
	URL     string   `cbor:"1,keyasint"`
	Unit    string   `cbor:"2,keyasint"`
	Keysets []string `cbor:"3,keyasint,omitempty"`
}

// Payment holds the terms on which a relay is paid. All zero means the relay
// is free.
type Payment struct {
	Mints        []AcceptedMint `cbor:"1,keyasint,omitempty"`
	ReceiverKey  []byte         `cbor:"2,keyasint,omitempty"` // Cashu P2PK key, compressed secp256k1
	PrepayBytes  uint64         `cbor:"3,keyasint,omitempty"` // how far ahead a client must pay
	GraceSeconds uint32         `cbor:"4,keyasint,omitempty"` // unpaid time before teardown
	FreeBytes    uint64         `cbor:"5,keyasint,omitempty"` // allowance before the first payment
	MinCapacity  uint64         `cbor:"6,keyasint,omitempty"` // channel capacity bounds, mint unit
	MaxCapacity  uint64         `cbor:"7,keyasint,omitempty"`
	MinExpiry    uint32         `cbor:"8,keyasint,omitempty"` // channel lifetime bounds, seconds
	MaxExpiry    uint32         `cbor:"9,keyasint,omitempty"`
}

// Relay is a verified relay descriptor (or one being built for signing).
// Times are Unix seconds.
type Relay struct {
	Version   uint8       `cbor:"1,keyasint"`
	PeerID    peer.ID     `cbor:"2,keyasint"`
	Seq       uint64      `cbor:"3,keyasint"`
	Published int64       `cbor:"4,keyasint"`
	Expires   int64       `cbor:"5,keyasint"`
	Addrs     [][]byte    `cbor:"6,keyasint"` // binary multiaddrs
	OnionKeys []OnionKey  `cbor:"7,keyasint"`
	Roles     Role        `cbor:"8,keyasint"`
	ExitPorts []PortRange `cbor:"9,keyasint,omitempty"`
	Bandwidth uint64      `cbor:"10,keyasint"` // advertised, bytes per second
	Price     Price       `cbor:"11,keyasint"`
	Payment   Payment     `cbor:"12,keyasint"`
	Family    []peer.ID   `cbor:"13,keyasint,omitempty"`
	Software  string      `cbor:"14,keyasint,omitempty"`
	Protocols []uint16    `cbor:"15,keyasint"`
}

// Speaks reports whether the relay announces circuit protocol version v.
func (r *Relay) Speaks(v uint16) bool { return slices.Contains(r.Protocols, v) }

// AcceptsPort reports whether the relay is an exit whose summary accepts
// TCP port p for some destination.
func (r *Relay) AcceptsPort(p uint16) bool {
	if !r.Roles.Has(RoleExit) {
		return false
	}
	for _, pr := range r.ExitPorts {
		if pr.Lo <= p && p <= pr.Hi {
			return true
		}
	}
	return false
}

// OnionKeyAt returns the onion key to use at time now: of the keys valid
// a minute from now, the one that expires first. A relay publishes the
// keys of its coming intervals ahead of time (specs/04-circuit.md §10),
// each answered only around its own interval, so the key that expires
// first is the current one; the minute keeps a key about to retire from
// being chosen for a build that would reach the relay after it.
func (r *Relay) OnionKeyAt(now time.Time) (OnionKey, bool) {
	var best OnionKey
	ok := false
	soon := now.Add(onionKeyMargin).Unix()
	for _, k := range r.OnionKeys {
		if k.NotAfter > soon && (!ok || k.NotAfter < best.NotAfter) {
			best, ok = k, true
		}
	}
	if !ok { // every key retires within the minute: the last one
		for _, k := range r.OnionKeys {
			if k.NotAfter > now.Unix() && (!ok || k.NotAfter > best.NotAfter) {
				best, ok = k, true
			}
		}
	}
	return best, ok
}

// onionKeyMargin is how long a key chosen by OnionKeyAt stays valid at
// least.
const onionKeyMargin = time.Minute

// ExpiresAt returns the expiry as a time.Time.
func (r *Relay) ExpiresAt() time.Time { return time.Unix(r.Expires, 0) }

// PublishedAt returns the publish time as a time.Time.
func (r *Relay) PublishedAt() time.Time { return time.Unix(r.Published, 0) }
