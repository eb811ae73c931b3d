package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"time"
)

// statusAddr is where every obol process serves its status, in its own
// namespace.
const statusAddr = "127.0.0.1:9100"

// knownRelays asks the obol process in node's namespace how many relay
// descriptors it holds; -1 if it did not answer.
func (b *nsRun) knownRelays(ctx context.Context, node int) int {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return b.net.Dial(ctx, node, "tcp4", addr)
		},
		DisableKeepAlives: true,
	}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+statusAddr+"/api/status", nil)
	if err != nil {
		return -1
	}
	resp, err := c.Do(req)
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	var s struct {
		DHT struct {
			KnownRelays int `json:"known_relays"`
		} `json:"dht"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&s) != nil {
		return -1
	}
	return s.DHT.KnownRelays
}

// waitKnown waits until the obol process in node's namespace holds every
// relay's descriptor, or ctx ends, and returns how many it holds.
func (b *nsRun) waitKnown(ctx context.Context, node int) int {
	for {
		n := b.knownRelays(ctx, node)
		if n >= b.cfg.Relays {
			return n
		}
		select {
		case <-ctx.Done():
			return n
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// waitViews waits, at most a minute, until the relays the proxy
// bootstraps from hold every relay's descriptor, so that the proxy's
// first view is whole.
func (b *nsRun) waitViews(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for i := range 2 {
		if n := b.waitKnown(ctx, nodeRelay0+i); n < b.cfg.Relays {
			return fmt.Errorf("bench: relay %d knows %d of %d relays after a minute", i, max(n, 0), b.cfg.Relays)
		}
	}
	return nil
}
