// Package hidden is obol's hidden services (specs/07-hidden.md): a
// service, named by a .obol address, keeps circuits to a few introduction
// points and publishes a blinded, encrypted descriptor for them in the
// DHT; a client fetches that descriptor through a circuit, opens a
// rendezvous point, introduces itself through an intro point, and meets
// the service there. A Noise NK handshake, carried in INTRODUCE and
// RENDEZVOUS, gives the two ends a layer of their own; streams are
// multiplexed inside it.
//
// Listen is the service side (a net.Listener); Client.Dial the client
// side. Neither ever contacts a DHT node or an intro or rendezvous relay
// directly: every exchange goes through a three-hop circuit.
package hidden
