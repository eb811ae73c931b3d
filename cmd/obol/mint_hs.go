package main

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/obolnet/obol"
	"github.com/obolnet/obol/hidden"
)

// mintServiceOptions say how a mint publishes itself as a hidden service
// (specs/05-payment.md §7.11): clients and relays then reach it at
// http://<address>.obol through circuits that end at the mint, and no
// exit sees their requests.
type mintServiceOptions struct {
	bootstrap []peer.AddrInfo
	dataDir   string // the service key, cache and guards; "" keeps them in memory
	key       ed25519.PrivateKey
	// for local test networks, whose relays share a /16 and are all new
	allowSameSubnet bool
	minGuardAge     time.Duration
	minExitAge      time.Duration
	timeout         time.Duration
	sample          int // how many relays the first view should hold; 0: the client's default
	log             *slog.Logger
}

// mintService is a mint's HTTP API at a local address, offered as a
// hidden service on port 80.
type mintService struct {
	url  string // http://<address>.obol
	stop func() // ends the service and waits for it
}

// startMintService joins the network and offers target (the mint's HTTP
// API on a local address) as a hidden service. Its circuits are not paid
// for: they ride the relays' free allowances, which a mint request and
// its answer (a few KiB) stay within; an intro circuit that has carried
// its relay's allowance of introductions is paused by the relay and
// replaced by the service like any lost intro point.
func startMintService(ctx context.Context, target string, o mintServiceOptions) (*mintService, error) {
	cfg := obol.ClientConfig{DataDir: o.dataDir, Bootstrap: o.bootstrap, Prebuilt: -1, JoinTimeout: o.timeout, Sample: o.sample,
		AllowSameSubnet: o.allowSameSubnet, MinGuardAge: o.minGuardAge, MinExitAge: o.minExitAge, Logger: o.log}
	if o.minGuardAge <= 0 {
		cfg.MinGuardAge = -1
	}
	if o.minExitAge <= 0 {
		cfg.MinExitAge = -1
	}
	c, err := obol.NewClient(cfg)
	if err != nil {
		return nil, err
	}
	rctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- c.Run(rctx) }()
	stop := func() { cancel(); <-ran }
	lctx, lcancel := context.WithTimeout(ctx, o.timeout)
	l, err := c.Listen(lctx, o.key)
	lcancel()
	if err != nil {
		stop()
		return nil, fmt.Errorf("mint hidden service: %w", err)
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		hidden.Forward(rctx, l, map[uint16]string{80: target})
	}()
	addr, _, _ := net.SplitHostPort(l.Addr().String())
	return &mintService{url: "http://" + addr, stop: func() { cancel(); <-served; l.Close(); <-ran }}, nil
}
