package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/obolnet/obol/descriptor"
	"github.com/obolnet/obol/internal/localnet"
)

// check is one named pass/fail line of `obol testnet --check`.
type check struct {
	name   string
	pass   bool
	detail string
}

// checkResults collects the checks of one run.
type checkResults struct {
	boot     []check
	discover []check
	services []check // requests through the proxy
	err      error   // discovery could not run at all
}

// bootChecks says how far the network got while booting.
func (t *testnet) bootChecks() []check {
	joined, published := t.counts()
	n := t.opts.relays
	return []check{
		{"every relay joined the DHT", joined == n, fmt.Sprintf("%d/%d", joined, n)},
		{"every relay published its descriptor", published == n, fmt.Sprintf("%d/%d", published, n)},
	}
}

// discover starts a client, samples until it has found every relay (or
// the deadline), prints what it found and checks it.
func (t *testnet) discover(ctx context.Context, net *localnet.Network) checkResults {
	res := checkResults{boot: t.bootChecks()}
	c, err := net.NewClient(ctx, "")
	if err != nil {
		fmt.Fprintf(t.e.stderr, "obol testnet: client: %v\n", err)
		res.err = err
		res.discover = []check{{"a client took its view of the relays", false, err.Error()}}
		return res
	}
	defer c.Close()
	d := net.Discover(ctx, c)
	fmt.Fprintf(t.e.stdout, "\na client discovered %d of %d relays from relays' views (rounds taken: %d):\n", len(d.Found), len(net.Relays), d.Attempts)
	printRelays(t.e.stdout, d.Found, t.e.now())
	res.discover = []check{
		{"the client discovered every relay from relays' views", len(d.Missing) == 0, fmt.Sprintf("%d/%d", len(d.Found), len(net.Relays))},
		lookupCheck(ctx, net),
		rolesCheck(net, d.Found),
	}
	return res
}

// lookupCheck has every relay looked up by peer ID in the DHT, each by
// the next relay: clients do not join the DHT (specs/02), relays look
// peers and hidden-service records up in it.
func lookupCheck(ctx context.Context, net *localnet.Network) check {
	var missing []string
	ids := net.IDs()
	for i, id := range ids {
		lctx, cancel := context.WithTimeout(ctx, lookupTimeout)
		_, _, err := net.Relays[(i+1)%len(ids)].Node().LookupRelay(lctx, id)
		cancel()
		if err != nil {
			missing = append(missing, fmt.Sprintf("%s: %v", id, err))
		}
	}
	detail := fmt.Sprintf("%d/%d", len(net.Relays)-len(missing), len(net.Relays))
	if len(missing) > 0 {
		detail += "; not found: " + strings.Join(missing, "; ")
	}
	return check{"every relay was found by peer ID in the DHT", len(missing) == 0, detail}
}

// lookupTimeout bounds one lookup of the check.
const lookupTimeout = 10 * time.Second

// rolesCheck compares each found descriptor's roles with the roles the
// relay was started with.
func rolesCheck(net *localnet.Network, found []*descriptor.Relay) check {
	want := map[string]descriptor.Role{}
	for i, id := range net.IDs() {
		want[string(id)] = net.Roles[i]
	}
	exits, bad := 0, []string{}
	for _, r := range found {
		if r.Roles != want[string(r.PeerID)] {
			bad = append(bad, r.PeerID.String())
		}
		if r.Roles.Has(descriptor.RoleExit) {
			exits++
		}
	}
	detail := fmt.Sprintf("%d exits", exits)
	if len(bad) > 0 {
		detail = "wrong roles: " + strings.Join(bad, ", ")
	}
	return check{"descriptors carry the configured roles", len(bad) == 0 && exits > 0, detail}
}

// report prints a line per check and a summary; it returns 0 when all
// passed.
func (t *testnet) report(res checkResults) int {
	passed, failed := 0, 0
	fmt.Fprintln(t.e.stdout)
	for _, c := range append(append(res.boot, res.discover...), res.services...) {
		word := "PASS"
		if c.pass {
			passed++
		} else {
			word = "FAIL"
			failed++
		}
		fmt.Fprintf(t.e.stdout, "%s  %s (%s)\n", word, c.name, c.detail)
	}
	if len(res.discover) == 0 {
		failed++
		fmt.Fprintf(t.e.stdout, "FAIL  the network booted (see the error above)\n")
	}
	fmt.Fprintf(t.e.stdout, "checks: %d passed, %d failed\n", passed, failed)
	if failed > 0 {
		return exitFail
	}
	return exitOK
}
