// Package relaynet builds in-process networks of real relays on loopback
// for tests, benchmarks and the bench harness: N libp2p hosts each with a
// router and an onion key, a static directory that resolves next hops and
// lists the relays' descriptors, a client link manager, and optional
// delaying forwarders in front of the relays.
//
// It does not import package testing (the bench harness is linked into
// the obol command): Open returns errors, and Start takes a small TB for
// tests. Networks whose relays find each other through the DHT are built
// with dht/dhttest and internal/localnet.
package relaynet
