// Package view gives every relay and client the same, complete view of
// the network: the verified descriptor of every live relay.
//
// Relays spread descriptors among themselves on a GossipSub topic
// (gossip.go): every message is decoded with limits and verified before
// it is kept or forwarded, and for each relay only the highest sequence
// number is kept. Each relay holds what it has verified in a Set, drops
// the relays it has not heard from for Silent, and serves it over the
// /obol/view/2 protocol (server.go): a digest of (short ID, sequence
// number) pairs changed since a client's last visit — gone relays with
// sequence number 0 — and the records themselves in compressed batches
// (wire.go). A client (sync.go) takes the union of the sets of several
// relays in different networks, verifies every record itself and drops
// the relays none of them holds, so a serving relay can withhold
// descriptors but never forge or alter one. specs/11-view.md is the
// protocol definition.
package view
