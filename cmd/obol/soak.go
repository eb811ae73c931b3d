package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/obolnet/obol/cmd/internal/soak"
)

type soakOptions struct {
	cfg soak.Config
	out string
	log logFlags
	// Internal: a soak counts the money with runs of the binary.
	relayMoney, settleWallet string
}

func soakFlags(args []string, w io.Writer) (soakOptions, int, bool) {
	o := soakOptions{cfg: soak.Defaults()}
	c := &o.cfg
	fs := newFlagSet("soak", "[--relays N] [--clients N] [--duration D] [--churn D] [--out DIR]", w)
	fs.Var(intValue{&c.Relays, 6, 1000}, "relays", "`N` relay processes running at any time (a third exits)")
	fs.Var(intValue{&c.Clients, 1, 64}, "clients", "`N` proxy processes, each with a funded wallet and its own users")
	fs.Var(durationValue{&c.Duration, time.Second, 24 * time.Hour}, "duration", "how long the traffic runs, a `duration`")
	fs.Var(durationValue{&c.Churn, 0, time.Hour}, "churn", "stop a random relay and start one in its place every `interval` (0: no churn)")
	fs.Var(intValue{&c.Traffic.WebUsers, 0, 256}, "web-users", "`N` web-like users per client")
	fs.Var(intValue{&c.Traffic.BulkUsers, 0, 64}, "bulk-users", "`N` bulk downloaders per client")
	fs.StringVar(&c.Dir, "dir", "", "keep the data directories and logs in `DIR` (default: a temporary directory, removed)")
	fs.StringVar(&o.out, "out", "", "write soak.json (every request and churn event) into `DIR`")
	fs.StringVar(&o.relayMoney, "relay-money", "", "internal: print the ledger and wallet of the stopped relay's data `DIR` as JSON")
	fs.StringVar(&o.settleWallet, "settle-wallet", "", "internal: settle the channels of the client wallet in `DIR`; print it as JSON")
	o.log.register(fs, slog.LevelInfo)
	code, ok := parse(fs, args)
	return o, code, ok
}

// runSoak is `obol soak`: a paid network of relay and proxy processes on
// loopback under traffic and churn.
func runSoak(ctx context.Context, args []string, e env) int {
	o, code, ok := soakFlags(args, e.stderr)
	if !ok {
		return code
	}
	switch {
	case o.relayMoney != "":
		return soakChild(soak.CountRelay(o.relayMoney, e.stdout), e)
	case o.settleWallet != "":
		return soakChild(soak.SettleClient(ctx, o.settleWallet, e.stdout), e)
	}
	bin, err := os.Executable()
	if err != nil {
		fmt.Fprintln(e.stderr, "obol soak:", err)
		return exitFail
	}
	o.cfg.Binary = bin
	o.cfg.Logger = o.log.logger(e.stderr)
	rep, err := soak.Run(ctx, o.cfg)
	if rep != nil {
		if werr := writeSoak(rep, o, e); werr != nil {
			fmt.Fprintln(e.stderr, "obol soak:", werr)
			return exitFail
		}
	}
	if err != nil {
		fmt.Fprintln(e.stderr, "obol soak:", err)
		return exitFail
	}
	return exitOK
}

func soakChild(err error, e env) int {
	if err != nil {
		fmt.Fprintln(e.stderr, "obol soak:", err)
		return exitFail
	}
	return exitOK
}

func writeSoak(rep *soak.Report, o soakOptions, e env) error {
	if err := rep.WriteTable(e.stdout); err != nil {
		return err
	}
	if o.out == "" {
		return nil
	}
	p, err := rep.WriteJSON(o.out)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "wrote %s\n", p)
	return nil
}
