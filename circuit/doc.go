// Package circuit holds the obol circuit protocol without I/O: the fixed-size
// link cell, relay cells and their payload codecs, per-hop layered
// encryption, the one-round-trip Noise NK circuit build (and the telescoping
// EXTEND fallback), and the relay's replay cache.
//
// Everything here works on byte slices: the link layer, the relay's router
// and the client's I/O are built on top of it. Nothing in this package starts
// goroutines, reads clocks or touches sockets; randomness comes from an
// io.Reader so that tests and test vectors are deterministic.
//
// The byte-level specification is specs/04-circuit.md.
//
// Pipeline, by file:
//
//	cell.go        link cell: circuit ID, command, fixed-size payload
//	destroy.go     DESTROY payload and reasons
//	relaycell.go   relay cell header inside RELAY / RELAY_EARLY
//	wire.go        strict byte reader, addresses
//	payloads.go    BEGIN, CONNECTED, END, RESOLVE(D), SENDME bodies
//	extend.go      EXTEND/EXTENDED bodies and the telescoping client side
//	kdf.go         key derivation from the Noise handshake
//	crypt.go       per-hop layer: chained tweakable wide-block cipher (mix, unmix)
//	onion.go       the create onion: Sphinx-style nesting of Noise NK msg1s
//	reply.go       the created reply: constant-size stack of Noise msg2s
//	client.go      client side: build, seal to hop k, open backward cells
//	relay.go       relay side: create, forward, backward, created, originate
//	dispatch.go    one inbound link cell in, one Action out (relay, client)
//	replay.go      replay cache of handshake ephemerals per onion-key period
//	errors.go      sentinel errors
package circuit
