package link

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"

	"github.com/obolnet/obol/circuit"
)

// pairWith is pair with b's manager configured by cfg.
func pairWith(t *testing.T, cfg Config) (*Manager, *Manager, chan *recorder) {
	a, b := newHost(t), newHost(t)
	accepted := make(chan *recorder, 100)
	cfg.OnCreate = func(ch *Channel, id uint32) Handler {
		r := newRecorder()
		accepted <- r
		return r
	}
	mb := NewManager(b, cfg)
	ma := NewManager(a, Config{})
	mb.Start()
	ma.Start()
	t.Cleanup(func() { ma.Close(); mb.Close() })
	return ma, mb, accepted
}

// rawStream opens a link-protocol stream from a to b that the test drives
// by hand, and writes one cell so that b's side exists.
func rawStream(t *testing.T, a host.Host, b host.Host) network.Stream {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a.Peerstore().AddAddrs(b.ID(), b.Addrs(), time.Hour)
	s, err := a.NewStream(ctx, b.ID(), Protocol)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Reset() })
	if _, err := s.Write(make([]byte, circuit.CellSize)); err != nil {
		t.Fatal(err)
	}
	return s
}

// waitFor polls cond (a counter the code under test moves) until it holds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// When the inbound queues of all circuits together pass the budget, the
// circuit with the oldest queued cell is closed and the others go on.
func TestQueueBudgetShedsOldest(t *testing.T) {
	ma, mb, accepted := pairWith(t, Config{MaxQueue: 1000, MaxQueuedCells: 100})
	ch := dialB(t, ma, mb)
	ctx := context.Background()
	open := func(blocked bool) (*Circ, *recorder) {
		c, _ := ch.Open(newRecorder())
		c.Send(ctx, circuit.CmdCreate, nil)
		r := <-accepted
		<-r.got
		r.blocked.Store(blocked)
		return c, r
	}
	big, rbig := open(true)
	small, rsmall := open(true)
	live, rlive := open(false)
	for i := range 60 {
		big.Send(ctx, circuit.CmdRelay, payloadN(i))
	}
	for i := range 30 {
		small.Send(ctx, circuit.CmdRelay, payloadN(i))
	}
	waitFor(t, "cells queued", func() bool { return mb.Stats().QueuedCells >= 88 })
	for i := range 20 { // passes the budget: big, stalled first, goes
		small.Send(ctx, circuit.CmdRelay, payloadN(30+i))
	}
	select {
	case err := <-rbig.closed:
		if !errors.Is(err, ErrOverBudget) {
			t.Fatalf("closed with %v, want ErrOverBudget", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("longest queue not shed")
	}
	if st := mb.Stats(); st.Shed != 1 || st.QueuedCells > 100 {
		t.Fatalf("stats %+v: want one shed circuit and at most 100 cells queued", st)
	}
	live.Send(ctx, circuit.CmdRelay, payloadN(7))
	if got := <-rlive.got; got[12] != 7 {
		t.Fatal("live circuit damaged")
	}
	close(rsmall.release)
	close(rbig.release)
	for range 50 {
		<-rsmall.got
	}
	waitFor(t, "queues drained", func() bool { return mb.Stats().QueuedCells == 0 })
}

// A peer that stops reading its channel loses it after the write timeout,
// and everything queued toward it is freed.
func TestStalledPeerChannelClosed(t *testing.T) {
	a, b := newHost(t), newHost(t)
	mb := NewManager(b, Config{WriteTimeout: 300 * time.Millisecond, OnCreate: func(*Channel, uint32) Handler { return newRecorder() }})
	mb.Start()
	t.Cleanup(func() { mb.Close() })
	rawStream(t, a, b) // a opens a channel and never reads it
	var ch *Channel
	waitFor(t, "the channel", func() bool {
		mb.mu.Lock()
		defer mb.mu.Unlock()
		for c := range mb.all {
			ch = c
		}
		return ch != nil
	})
	c, err := ch.Open(newRecorder())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sent := 0
	for c.Send(ctx, circuit.CmdRelay, nil) == nil {
		sent++ // transport windows fill, then the writer stalls
	}
	select {
	case <-ch.Done():
	case <-ctx.Done():
		t.Fatal("channel to a peer that does not read never closed")
	}
	if !errors.Is(ch.Err(), ErrPeerNotReading) || mb.Stats().StalledChannels != 1 {
		t.Fatalf("closed with %v, stats %+v", ch.Err(), mb.Stats())
	}
	t.Logf("%d cells taken before the stall closed the channel", sent)
}

// One peer cannot open more than MaxChannelsPerPeer channels; another
// peer still can.
func TestChannelsPerPeerLimited(t *testing.T) {
	a, b := newHost(t), newHost(t)
	mb := NewManager(b, Config{MaxChannelsPerPeer: 3})
	mb.Start()
	t.Cleanup(func() { mb.Close() })
	for range 10 {
		rawStream(t, a, b)
	}
	waitFor(t, "refusals", func() bool { return mb.Stats().RefusedChannels == 7 })
	if n := mb.Channels(); n != 3 {
		t.Fatalf("%d channels from one peer, want 3", n)
	}
	ma := NewManager(newHost(t), Config{})
	ma.Start()
	t.Cleanup(func() { ma.Close() })
	dialB(t, ma, mb).SendRaw(context.Background(), 5|initiatorBit, circuit.CmdPadding, nil)
	waitFor(t, "another peer's channel", func() bool { return mb.Channels() == 4 })
}

// Random bytes on a link stream are read as cells for no circuit and
// dropped (counted), or as CREATEs handed to OnCreate; they cost the node
// nothing else, and an honest channel goes on meanwhile.
func TestLinkGarbageDropped(t *testing.T) {
	ma, mb, accepted := pairWith(t, Config{})
	ch := dialB(t, ma, mb)
	s := rawStream(t, newHost(t), mb.Host())
	const cells = 2000
	go func() {
		buf := make([]byte, cells*circuit.CellSize+77) // and a torn cell
		rand.Read(buf)
		s.Write(buf)
	}()
	ctx := context.Background()
	c, _ := ch.Open(newRecorder())
	c.Send(ctx, circuit.CmdCreate, nil)
	var r *recorder
	for r == nil { // garbage may have created circuits too
		select {
		case got := <-accepted:
			if first := <-got.got; binary.BigEndian.Uint32(first) == c.ID() {
				r = got
			}
		case <-time.After(10 * time.Second):
			t.Fatal("honest circuit not accepted")
		}
	}
	for i := range 100 {
		c.Send(ctx, circuit.CmdRelay, payloadN(i))
	}
	for i := range 100 {
		if got := <-r.got; binary.BigEndian.Uint64(got[5:]) != uint64(i) {
			t.Fatal("honest circuit damaged")
		}
	}
	waitFor(t, "garbage read", func() bool { return mb.Stats().DroppedCells >= cells/2 })
	t.Logf("stats after %d garbage cells: %+v", cells, mb.Stats())
}
