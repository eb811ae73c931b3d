package obol_test

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
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
		sender, err := ch.SenderOutputs()
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range append(ch.FundingOutputs(), sender...) {
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

// firstHops are the relays a node's data directory lists as the first
// hops of its circuits: the guards of its exit circuits, of its circuits
// to the mint and of its hidden-service circuits (whose vanguards are
// second hops). A file the node never wrote lists none.
func firstHops(t *testing.T, dir string) map[peer.ID]bool {
	out := map[peer.ID]bool{}
	for _, f := range []string{obol.GuardFile, obol.MintGuardFile, obol.HSGuardFile} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		var gf struct {
			Guards []struct {
				ID string `json:"id"`
			} `json:"guards"`
		}
		if err := json.Unmarshal(b, &gf); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, g := range gf.Guards {
			id, err := peer.Decode(g.ID)
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			out[id] = true
		}
	}
	if len(out) == 0 {
		t.Fatalf("no guard listed in %s", dir)
	}
	return out
}

// victim is what the colluders' test needs of the client (or service)
// that was watched: its address, its guards, what each relay saw as
// previous hops while its circuits were up, and where the mint's log of
// it begins and ends.
type victim struct {
	ip          string
	guards      map[peer.ID]bool
	prev        []map[string]bool // by relay
	mark, until int
}

// relayJoin is what one relay and the mint, pooling what they hold,
// learn of the watched node's channels at that relay.
type relayJoin struct {
	channels int                 // in the relay's book
	named    []payment.ChannelID // joined to the watched address
	control  int                 // joined to the control's address, over the whole log
	viaExits int                 // joined to an exit's outbound address
	sees     bool                // the watched address is among the relay's previous hops
}

// join is, for each relay in turn, its book and the previous hops it saw
// joined with the mint's records of v's window (and, for the control,
// with all of them).
func (wn *watchedNet) join(t *testing.T, v victim) []relayJoin {
	reqs := wn.mw.since(v.mark)[:v.until-v.mark]
	all := wn.mw.since(0) // the control's channels, whenever funded
	var out []relayJoin
	for i, r := range wn.network.Relays {
		book := bookOf(t, r)
		joined, joinedAll := book.join(reqs), book.join(all)
		j := relayJoin{channels: len(book.channels()), sees: v.prev[i][v.ip]}
		for id := range book.channels() {
			srcs := joined[id]
			if srcs[v.ip] {
				j.named = append(j.named, id)
			}
			if joinedAll[id][directIP] {
				j.control++
			}
			for a := range srcs {
				if _, ok := wn.exits[a]; ok {
					j.viaExits++
					break
				}
			}
		}
		out = append(out, j)
	}
	return out
}

// unnamed counts the channels found through exits at relays that do not
// see v's address as a previous hop: those whose owner the join must not
// name.
func unnamed(js []relayJoin) int {
	n := 0
	for _, j := range js {
		if !j.sees {
			n += j.viaExits
		}
	}
	return n
}

// watch is what each relay sees of ip's circuits while they are up, once
// a relay holds a channel of it funded through an exit (since mark)
// without seeing ip as the previous hop of any circuit, and a relay does
// see it: the moment the colluders' test needs.
func (wn *watchedNet) watch(t *testing.T, ctx context.Context, ip string, mark int) *victim {
	t.Helper()
	v := &victim{ip: ip, mark: mark}
	waitMint(t, ctx, wn.mw, mark, "a channel of "+ip+" beyond its first hops", func(reqs []mintRequest) bool {
		v.prev, v.until = nil, mark+len(reqs)
		sees := false
		for _, r := range wn.network.Relays {
			p := prevHops(r)
			sees = sees || p[ip]
			v.prev = append(v.prev, p)
		}
		return sees && unnamed(wn.join(t, *v)) > 0
	})
	return v
}

// colluders joins, for each relay in turn, the relay's book and the
// previous hops it saw with the mint's records, as a relay working with
// the mint would, and checks that the watched address comes out only at
// the watched node's guards — which see it as the previous hop of its
// circuits, the exposure every first hop has — and never from the mint's
// records; and that the other relays hold channels of it all the same
// (funded through exits), which they cannot name the owner of. The
// control (directIP), which reaches the mint directly, is named by the
// same join: it can fail.
func colluders(t *testing.T, wn *watchedNet, v victim) {
	ids := wn.network.IDs()
	exposed, control := 0, 0
	js := wn.join(t, v)
	for i, j := range js {
		guard := v.guards[ids[i]]
		for _, id := range j.named {
			t.Errorf("relay %d with the mint names %s, the owner of channel %s, from the mint's records", i, v.ip, id)
		}
		control += j.control
		if j.sees {
			exposed++
			if !guard {
				t.Errorf("relay %d, not a guard of %s, saw its address as a previous hop", i, v.ip)
			}
		}
		t.Logf("relay %d (guard %v): %d channels, %d found through exits in the mint's records; %s among its previous hops: %v",
			i, guard, j.channels, j.viaExits, v.ip, j.sees)
	}
	if exposed == 0 {
		t.Errorf("no relay saw %s as a previous hop: the relays' side of the join proves nothing", v.ip)
	}
	if control == 0 {
		t.Error("the join names no channel of the control, which reaches the mint directly: it proves nothing")
	}
	if unnamed(js) == 0 {
		t.Errorf("no relay but the first hops of %s holds a channel the mint saw through an exit: the test exercises nothing", v.ip)
	}
}
