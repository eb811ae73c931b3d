package obol_test

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/obolnet/obol"
	"github.com/obolnet/obol/internal/node"
	"github.com/obolnet/obol/payment"
)

// relayBook is what one relay knows of its channels and would pool with
// the mint: every output and secret of each channel (the funding and the
// sender's outputs, derived from the channel secret both ends hold) and
// their Ys, by channel.
type relayBook map[string]payment.ChannelID

func bookOf(t *testing.T, r *node.Relay) relayBook {
	rp, ok := r.Payments().(*node.RelayPayments)
	if !ok {
		t.Fatal("a paid relay without a ledger")
	}
	b := relayBook{}
	for _, st := range rp.Ledger.Channels() {
		ch, ok := rp.Ledger.Channel(st.ID)
		if !ok {
			t.Fatalf("the relay lost channel %s", st.ID)
		}
		for _, o := range append(ch.FundingOutputs(), ch.SenderOutputs()...) {
			Y, err := payment.HashToCurve([]byte(o.Secret))
			if err != nil {
				t.Fatal(err)
			}
			b[o.BHex], b[o.Secret], b[hex.EncodeToString(Y.SerializeCompressed())] = st.ID, st.ID, st.ID
		}
	}
	return b
}

// channels are the book's channels.
func (b relayBook) channels() map[payment.ChannelID]bool {
	out := map[payment.ChannelID]bool{}
	for _, id := range b {
		out[id] = true
	}
	return out
}

// join is the colluders' join: for each of the book's channels, the
// source addresses of the mint's requests that name it — by an output,
// an input's secret or a Y.
func (b relayBook) join(reqs []mintRequest) map[payment.ChannelID]map[string]bool {
	out := map[payment.ChannelID]map[string]bool{}
	for _, r := range reqs {
		var body struct {
			Inputs  []payment.Proof          `json:"inputs"`
			Outputs []payment.BlindedMessage `json:"outputs"`
			Ys      []string                 `json:"Ys"`
		}
		if json.Unmarshal(r.body, &body) != nil {
			continue
		}
		keys := body.Ys
		for _, p := range body.Inputs {
			keys = append(keys, p.Secret)
		}
		for _, o := range body.Outputs {
			keys = append(keys, o.B)
		}
		for _, k := range keys {
			if id, ok := b[k]; ok {
				if out[id] == nil {
					out[id] = map[string]bool{}
				}
				out[id][r.ip] = true
			}
		}
	}
	return out
}

// prevHops are the addresses of the previous hops of the circuits r
// carries now, as r sees them on its connections.
func prevHops(r *node.Relay) map[string]bool {
	h := r.Node().Host()
	out := map[string]bool{}
	for _, k := range r.Router().Circuits() {
		if k.Prev == "" {
			continue
		}
		for _, c := range h.Network().ConnsToPeer(k.Prev) {
			if ip, err := manet.ToIP(c.RemoteMultiaddr()); err == nil {
				out[ip.String()] = true
			}
		}
	}
	return out
}

// clientGuards are the guards a client's data directory lists: those of
// its exit circuits and of its circuits to the mint.
func clientGuards(t *testing.T, dir string) map[peer.ID]bool {
	out := map[peer.ID]bool{}
	for _, f := range []string{obol.GuardFile, obol.MintGuardFile} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		var gf struct {
			Guards []struct {
				ID peer.ID `json:"id"`
			} `json:"guards"`
		}
		if err := json.Unmarshal(b, &gf); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, g := range gf.Guards {
			out[g.ID] = true
		}
	}
	return out
}

// victim is what the colluders' test needs of the client that was
// watched: its address, its guards, what each relay saw as previous hops
// while its circuits were up, and where the mint's log of it begins.
type victim struct {
	ip     string
	guards map[peer.ID]bool
	prev   []map[string]bool // by relay
	mark   int
}

// colluders joins, for each relay in turn, the relay's book and the
// previous hops it saw with the mint's records, as a relay working with
// the mint would, and checks that the client's address comes out only at
// the client's guards — which see it as the previous hop of its
// circuits, the exposure every first hop has — and never from the mint's
// records; and that the other relays hold channels of the client all the
// same (funded through exits), which they cannot name the client of. The
// control (directIP), which reaches the mint directly, is named by the
// same join: it can fail.
func colluders(t *testing.T, wn *watchedNet, v victim) {
	reqs := wn.mw.since(v.mark)
	ids := wn.network.IDs()
	exposed, unnamed, controlNamed := 0, 0, 0
	for i, r := range wn.network.Relays {
		guard, sees := v.guards[ids[i]], v.prev[i][v.ip]
		book := bookOf(t, r)
		joined := book.join(reqs)
		viaExits := 0
		for id := range book.channels() {
			srcs := joined[id]
			if srcs[v.ip] {
				t.Errorf("relay %d with the mint names the client of channel %s from the mint's records", i, id)
			}
			if srcs[directIP] {
				controlNamed++
			}
			for a := range srcs {
				if _, ok := wn.exits[a]; ok {
					viaExits++
					break
				}
			}
		}
		if sees {
			exposed++
			if !guard {
				t.Errorf("relay %d, not a guard of the client, saw the client's address as a previous hop", i)
			}
		} else {
			unnamed += viaExits
		}
		t.Logf("relay %d (guard %v): %d channels, %d found through exits in the mint's records; the client's address among its previous hops: %v",
			i, guard, len(book.channels()), viaExits, sees)
	}
	if exposed == 0 {
		t.Error("no relay saw the client's address as a previous hop: the relays' side of the join proves nothing")
	}
	if controlNamed == 0 {
		t.Error("the join names no channel of the client that reaches the mint directly: it proves nothing")
	}
	if unnamed == 0 {
		t.Error("no relay but the client's first hops holds a channel the mint saw through an exit: the test exercises nothing")
	}
}
