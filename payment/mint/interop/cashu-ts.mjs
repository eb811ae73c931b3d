// Drives the obol test mint with @cashu/cashu-ts: mint over bolt11, send
// P2PK-locked ecash, redeem it with the key (and fail without it), melt,
// and check proof states. Run by payment/mint's TestCashuTS with MINT_URL,
// PRIVKEY and PUBKEY set; prints one JSON line and exits non-zero on error.
import { Wallet, getEncodedToken, MintQuoteState } from '@cashu/cashu-ts';

const mintUrl = process.env.MINT_URL;
const privkey = process.env.PRIVKEY;
const pubkey = process.env.PUBKEY;
const sum = (ps) => ps.reduce((a, p) => a + Number(p.amount), 0);
const result = {};

const wallet = new Wallet(mintUrl);
await wallet.loadMint();

// NUT-04: mint 64 sat; the fake Lightning backend pays at once.
const quote = await wallet.createMintQuoteBolt11(64);
const checked = await wallet.checkMintQuoteBolt11(quote.quote);
if (checked.state !== MintQuoteState.PAID) throw new Error(`quote state ${checked.state}`);
let proofs = await wallet.mintProofsBolt11(64, quote.quote);
result.minted = sum(proofs);

// NUT-03 + NUT-11: send 20 sat locked to PUBKEY.
const { keep, send } = await wallet.ops.send(20, proofs).asP2PK({ pubkey }).run();
result.locked = sum(send);
const token = getEncodedToken({ mint: mintUrl, proofs: send });

// Redeeming without the key must fail; with it, succeed.
const wallet2 = new Wallet(mintUrl);
await wallet2.loadMint();
try {
  await wallet2.receive(token);
  result.receivedWithoutKey = true;
} catch (e) {
  result.receivedWithoutKey = false;
}
const received = await wallet2.receive(token, { privkey });
result.received = sum(received);

// NUT-07: the locked proofs are now spent.
const states = await wallet.checkProofsStates(send);
result.lockedStates = states.map((s) => s.state);

// NUT-05: melt to an invoice of the mint itself.
const invoiceQuote = await wallet.createMintQuoteBolt11(10);
const meltQuote = await wallet.createMeltQuoteBolt11(invoiceQuote.request);
const need = Number(meltQuote.amount) + Number(meltQuote.fee_reserve);
const { keep: keep2, send: toMelt } = await wallet.send(need, keep, { includeFees: true });
const melted = await wallet.meltProofsBolt11(meltQuote, toMelt);
result.meltState = melted.quote.state;
result.change = sum(melted.change ?? []);
result.kept = sum(keep2);

console.log(JSON.stringify(result));
