// Package view gives every relay and client the same, complete view of
// the network: the verified descriptor of every live relay.
//
// Relays spread descriptors among themselves on a GossipSub topic
// (gossip.go): every message is decoded with limits and verified before
// it is kept or forwarded, and for each relay only the highest sequence
// number is kept. Each relay holds what it has verified in a Set and
// serves it over the /obol/view/1 protocol (server.go): a digest of
// (peer ID, sequence number) pairs changed since a client's last visit,
// and the records themselves in batches (wire.go). A client (sync.go)
// takes the union of the sets of several relays in different networks
// and verifies every record itself, so a serving relay can withhold
// descriptors but never forge or alter one. specs/02-dht.md, "The view",
// is the protocol definition.
package view
