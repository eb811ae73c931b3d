// Package wallet is obol's Cashu wallet: proofs of one mint and unit kept
// in a journal, with every mint operation written ahead and settled after
// a crash (NUT-07 state check, NUT-09 restore), NUT-13 deterministic
// secrets, tokens, P2PK, melts, and the funding of payment channels.
// Proofs are bearer money: the wallet logs nothing and no error it returns
// carries a proof.
package wallet
