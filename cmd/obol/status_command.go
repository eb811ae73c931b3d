package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"time"

	"github.com/obolnet/obol/internal/status"
)

type statusOptions struct {
	addr    string
	json    bool
	watch   time.Duration
	timeout time.Duration
	log     logFlags
}

func statusFlags(args []string, w io.Writer) (statusOptions, int, bool) {
	o := statusOptions{addr: "127.0.0.1:9102", timeout: 10 * time.Second}
	fs := newFlagSet("status", "[--addr HOST:PORT] [--json | --watch DURATION]", w)
	fs.StringVar(&o.addr, "addr", o.addr, "`host:port` of the node's -status endpoint")
	fs.BoolVar(&o.json, "json", false, "print the node's /api/status answer as JSON")
	fs.Var(durationValue{&o.watch, 100 * time.Millisecond, time.Hour}, "watch", "print again every `duration` until interrupted (default: once)")
	fs.Var(durationValue{&o.timeout, time.Second, time.Hour}, "timeout", "give up after this `duration`")
	o.log.register(fs, slog.LevelWarn)
	if code, ok := parse(fs, args); !ok {
		return o, code, false
	}
	if o.json && o.watch > 0 {
		return o, usageError(fs, "watch", o.watch.String(), "prints for a terminal; use -json alone, once"), false
	}
	return o, 0, true
}

// runStatus is `obol status`: it asks a running node for its status and
// prints it.
func runStatus(ctx context.Context, args []string, e env) int {
	o, code, ok := statusFlags(args, e.stderr)
	if !ok {
		return code
	}
	if o.watch > 0 {
		return watchStatus(ctx, o, e)
	}
	log := o.log.logger(e.stderr)
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	s, err := status.Fetch(ctx, o.addr)
	if err != nil {
		log.Error("no status", "err", err)
		return exitFail
	}
	if o.json {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		enc.Encode(s)
		return exitOK
	}
	status.Print(e.stdout, s)
	return exitOK
}
