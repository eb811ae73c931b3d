// Package pay pays for circuits with Cashu ecash over per-hop Spilman
// channels (specs/05-payment.md), on both sides of a circuit.
//
// A client's side: Channels implements client.HopPayer over package
// payment and a payment/wallet, with a fresh sender key per channel,
// standard capacities and coarse expiry buckets, and keeps a book of the
// channels it opened so that after any crash each one ends settled
// (remainder reclaimed) or refundable. Paths says how to pay a chosen
// path, and Payer puts them together over a wallet directory: plug it
// into a client.Config and run it beside the manager to settle.
//
// A relay's side: Payee holds a paid relay's receiver key, ledger,
// meter (router.PaidMeter, which pauses circuits that do not pay) and
// settler (router.Settler, which closes channels at the mint), and the
// terms its descriptor publishes.
//
// Reaching the mint (specs/05-payment.md §7.11): every request goes
// through the embedder's MintTransport, each operation (keysets, pool,
// fund, settle) with a fresh isolation key; a wallet without one opens
// only with DirectMintConnectionUnsafe. Channels are funded from a pool
// of exact denominations filled at random times, each hop at a time drawn
// after its circuit's build (never on the build's path), one channel per
// swap; settlement runs in random batches, one isolation per channel.
// The circuits that carry mint requests are paid with MintPay: they fund
// nothing and run on the relays' free allowances. A hidden service's
// rendezvous circuits are paid by Standby, from channels funded in advance
// to its guards and vanguards at random times: an introduction makes no
// mint request (§7.13).
//
// Package circuit may not know of payment; this package plugs one into
// the other.
package pay
