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

// nodeStatus is what the namespace run reads of an obol process's status.
type nodeStatus struct {
	Traffic struct {
		CircuitsOpen int `json:"circuits_open"`
	} `json:"traffic"`
	DHT struct {
		KnownRelays int `json:"known_relays"`
	} `json:"dht"`
}

// status asks the obol process in node's namespace for its status.
func (b *nsRun) status(ctx context.Context, node int) (nodeStatus, error) {
	var s nodeStatus
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
		return s, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return s, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return s, fmt.Errorf("bench: status answered %s", resp.Status)
	}
	return s, json.NewDecoder(resp.Body).Decode(&s)
}

// knownRelays asks the obol process in node's namespace how many relay
// descriptors it holds; -1 if it did not answer.
func (b *nsRun) knownRelays(ctx context.Context, node int) int {
	s, err := b.status(ctx, node)
	if err != nil {
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

// waitViews waits, at most a minute, until two relays hold every
// relay's descriptor, and returns them: the proxy joins through them, so
// that its first view is whole.
func (b *nsRun) waitViews(ctx context.Context) ([]int, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	known := make([]int, b.cfg.Relays)
	for {
		var whole []int
		for i := range b.cfg.Relays {
			if known[i] = b.knownRelays(ctx, nodeRelay0+i); known[i] >= b.cfg.Relays {
				whole = append(whole, i)
			}
		}
		if len(whole) >= 2 {
			return whole[:2], nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("bench: after a minute, fewer than two relays know all %d (each knows: %v; -1: no answer)",
				b.cfg.Relays, known)
		case <-time.After(200 * time.Millisecond):
		}
	}
}
