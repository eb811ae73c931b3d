package link

import (
	"context"
	"crypto/rand"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/obolnet/obol/dht"
)

// A peer that comes back on its address after a crash is reached at the
// next attempt. Callers choose when to try a peer again (a client's guard
// set and its suspects); libp2p's dial backoff, which grows with every
// attempt while the peer is down, would keep a restarted guard out of
// reach for up to five minutes.
func TestChannelToRestartedPeer(t *testing.T) {
	listen := fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", portOutsideEphemeral(t))
	key, _, _ := crypto.GenerateEd25519Key(rand.Reader)
	startB := func() (host.Host, *Manager) {
		h, err := dht.NewHost(dht.HostConfig{Identity: key, Listen: []string{listen}})
		if err != nil {
			t.Fatal(err)
		}
		m := NewManager(h, Config{OnCreate: func(*Channel, uint32) Handler { return newRecorder() }})
		m.Start()
		return h, m
	}
	ha := newHost(t)
	ma := NewManager(ha, Config{})
	ma.Start()
	t.Cleanup(func() { ma.Close() })
	b, mb := startB()
	ai := peer.AddrInfo{ID: b.ID(), Addrs: b.Addrs()}
	channel := func() (*Channel, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return ma.Channel(ctx, ai)
	}
	ch, err := channel()
	if err != nil {
		t.Fatal(err)
	}
	// Until this side has seen the connection close, a stream can still
	// be opened on it (the muxer opens streams without a round trip):
	// wait for that before calling the peer down.
	closed, bid := make(chan struct{}, 1), b.ID()
	ha.Network().Notify(&network.NotifyBundle{DisconnectedF: func(_ network.Network, c network.Conn) {
		if c.RemotePeer() == bid {
			select {
			case closed <- struct{}{}:
			default:
			}
		}
	}})
	mb.Close()
	b.Close()
	<-ch.Done()
	for ha.Network().Connectedness(bid) == network.Connected {
		select {
		case <-closed:
		case <-t.Context().Done():
			return
		}
	}
	for range 3 {
		if _, err := channel(); err == nil {
			t.Fatal("a channel opened to a peer that is down")
		}
	}
	b, mb = startB()
	t.Cleanup(func() { mb.Close(); b.Close() })
	if _, err := channel(); err != nil {
		t.Fatalf("the restarted peer is out of reach: %v", err)
	}
}

// portOutsideEphemeral returns a free TCP port on 127.0.0.1 below the
// kernel's ephemeral range, so that while the test's peer is down no
// other process (tests of other packages run at the same time) is given
// its port for a listener of its own.
func portOutsideEphemeral(t *testing.T) int {
	t.Helper()
	low := 32768 // Linux's default ip_local_port_range starts here
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil {
				low = n
			}
		}
	}
	if low <= 10000 {
		t.Skipf("ephemeral ports start at %d: no room below them", low)
	}
	for range 100 {
		port := 10000 + mrand.IntN(low-10000)
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue // taken
		}
		ln.Close()
		return port
	}
	t.Fatal("no free port below the ephemeral range")
	return 0
}
