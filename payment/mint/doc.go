// Package mint is obol's Cashu test mint for local networks and tests:
// NUT-00…07, 09, 11 (the merged rules of package payment: aggregated
// SIG_ALL, n_sigs_refund), 12 (deterministic DLEQ nonces), bolt11 quotes
// paid automatically by a fake Lightning backend, sat and msat keysets,
// state persisted in an append-only journal, and an injectable clock.
//
// It is not a production mint: its keys derive from a seed in its
// configuration and its Lightning backend pays nothing.
package mint
