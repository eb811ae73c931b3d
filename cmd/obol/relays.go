package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/obolnet/obol/descriptor"
	"github.com/obolnet/obol/dht"
	"github.com/obolnet/obol/internal/node"
)

// maxSample bounds -n.
const maxSample = 1000

type relaysOptions struct {
	client  node.ClientConfig
	n       int
	timeout time.Duration
	log     logFlags
}

func relaysFlags(args []string, w io.Writer) (relaysOptions, int, bool) {
	o := relaysOptions{n: 20, timeout: 30 * time.Second}
	fs := newFlagSet("relays", "--bootstrap ADDRS [flags]", w)
	fs.Var(bootstrapValue{&o.client.Bootstrap}, "bootstrap", "comma-separated /p2p/ `multiaddrs` of relays to join through (required)")
	fs.StringVar(&o.client.DataDir, "data-dir", "", "`directory` for the descriptor cache "+node.CacheFile+" (default: no cache)")
	fs.Var(intValue{&o.n, 1, maxSample}, "n", "how many relays the view should hold at least (a `count`)")
	fs.Var(durationValue{&o.timeout, time.Second, time.Hour}, "timeout", "give up joining and sampling after this `duration`")
	o.log.register(fs, slog.LevelInfo)
	if code, ok := parse(fs, args); !ok {
		return o, code, false
	}
	if len(o.client.Bootstrap) == 0 {
		return o, usageError(fs, "bootstrap", "", "at least one bootstrap peer is needed to join"), false
	}
	return o, 0, true
}

// runRelays is `obol relays`.
func runRelays(ctx context.Context, args []string, e env) int {
	o, code, ok := relaysFlags(args, e.stderr)
	if !ok {
		return code
	}
	log := o.log.logger(e.stderr)
	o.client.Logger = log
	c, err := node.OpenClient(o.client)
	if err != nil {
		log.Error("client did not start", "err", err)
		return exitFail
	}
	defer func() {
		if err := c.Close(); err != nil {
			log.Warn("closing the client", "err", err)
		}
	}()
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	relays, err := sample(ctx, c, o.n, log)
	if err != nil {
		log.Error("sampling failed", "err", err)
		return exitFail
	}
	if v := c.View(); v.Sources > 0 {
		fmt.Fprintf(e.stdout, "view: %d relays from %d sources, age %s\n", len(relays), v.Sources, formatAge(e.now().Sub(v.At)))
	} else {
		fmt.Fprintf(e.stdout, "view: %d relays from the cache; no source answered\n", len(relays))
	}
	printRelays(e.stdout, relays, e.now())
	return exitOK
}

// sample takes the view, hoping for n relays; a short view is not an
// error.
func sample(ctx context.Context, c *node.Client, n int, log *slog.Logger) ([]*descriptor.Relay, error) {
	rs, err := c.Sample(ctx, n)
	if errors.Is(err, dht.ErrShortSample) && len(rs) > 0 {
		log.Info("fewer relays than asked for", "found", len(rs), "asked", n)
	} else if err != nil {
		return nil, err
	}
	if len(rs) == 0 {
		return nil, fmt.Errorf("no relay found")
	}
	return rs, nil
}
