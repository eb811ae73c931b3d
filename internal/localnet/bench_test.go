package localnet

import (
	"context"
	"testing"
	"time"
)

// BenchmarkBootAndDiscover8 times what `obol testnet` does before it
// prints its table: boot 8 relays until every descriptor can be looked
// up, then let a fresh client sample all of them.
func BenchmarkBootAndDiscover8(b *testing.B) {
	for b.Loop() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		n, err := Start(ctx, Config{Relays: 8})
		if err != nil {
			b.Fatal(err)
		}
		c, err := n.NewClient(ctx, "")
		if err != nil {
			b.Fatal(err)
		}
		if d := n.Discover(ctx, c); len(d.Missing) > 0 {
			b.Fatalf("missing %d relays", len(d.Missing))
		}
		c.Close()
		n.Close()
		cancel()
	}
}
