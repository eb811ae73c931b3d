// Package payment is obol's Cashu core: NUT-00 blind signatures, NUT-11
// pay-to-public-key spending conditions (with the aggregated SIG_ALL message
// and n_sigs_refund), NUT-12 DLEQ proofs, NUT-13 deterministic secrets,
// NUT-28 pay-to-blinded-key, the Spilman payment channel of the Cashu channel
// draft, and the payment messages a client and a relay exchange inside one
// hop's encrypted circuit session.
//
// The package does no network I/O. A sender builds a [Channel] from
// [ChannelParams], funds it at a mint (package payment/wallet does it with
// a crash-safe journal) and pays through a [ChannelPayer]; a relay opens
// the channel with [OpenChannel] (which verifies the funding proofs and
// derives every output it will ever need, once) and checks each update
// locally through a [Ledger], which can persist to a [FileStore]. The wire
// format is in wire.go, the fragments that carry messages in relay cells in
// frag.go ([Fragment], [Reassembler]), both in specs/05-payment.md.
// Package payment/mint is the test mint.
//
// Nothing in this package logs, and no error it returns contains a secret,
// a proof or a signature.
package payment
