package main

import (
	"context"
	"fmt"
	"time"

	"github.com/obolnet/obol/internal/status"
)

// clearScreen moves the cursor home and clears the terminal (ANSI).
const clearScreen = "\x1b[H\x1b[2J"

// watchStatus prints the node's status every interval until ctx ends; a
// node that stops answering is reported and asked again.
func watchStatus(ctx context.Context, o statusOptions, e env) int {
	t := time.NewTicker(o.watch)
	defer t.Stop()
	for {
		fctx, cancel := context.WithTimeout(ctx, o.timeout)
		s, err := status.Fetch(fctx, o.addr)
		cancel()
		fmt.Fprint(e.stdout, clearScreen)
		if err != nil {
			fmt.Fprintf(e.stdout, "%s\n", err)
		} else {
			status.Print(e.stdout, s)
		}
		select {
		case <-ctx.Done():
			return exitOK
		case <-t.C:
		}
	}
}
