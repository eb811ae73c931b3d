package router_test

import (
	"crypto/rand"
	"sync"
	"testing"
	"time"

	"github.com/obolnet/obol/circuit"
	"github.com/obolnet/obol/circuit/client"
	"github.com/obolnet/obol/descriptor"
	"github.com/obolnet/obol/router"
)

// countingMeter is a relay's meter that lets each circuit move allowance
// cells and never takes a payment: what it counts is what the relay would
// bill each circuit.
type countingMeter struct {
	allowance uint64

	mu       sync.Mutex
	circuits []*countedCircuit // in the order they were opened
}

type countedCircuit struct {
	m     *countingMeter
	cells uint64 // guarded by m.mu
}

func (m *countingMeter) Open(router.Control) router.CircuitMeter {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := &countedCircuit{m: m}
	m.circuits = append(m.circuits, c)
	return c
}

// counted is what the i-th circuit opened has moved, in cells.
func (m *countingMeter) counted(i int) uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	if i >= len(m.circuits) {
		return 0
	}
	return m.circuits[i].cells
}

func (c *countedCircuit) Cells(n int) bool {
	c.m.mu.Lock()
	defer c.m.mu.Unlock()
	c.cells += uint64(n)
	return c.cells <= c.m.allowance
}

func (c *countedCircuit) Deliver(circuit.RelayCell) (*circuit.RelayCell, error) { return nil, nil }
func (c *countedCircuit) Close()                                                {}

// splice joins a client circuit (0, 1, 3) and a service circuit (2, 1, 3)
// at relay 3, whose meter is m: the client's circuit is m's circuit 0,
// the service's circuit 1.
func splice(t *testing.T, m *countingMeter) (cli, svc *client.Circuit, cliIn, svcIn replies) {
	tn := newTestNet(t, 4, func(i int, c *router.Config) {
		if i == 3 {
			c.Meter = m
		}
	})
	cli = tn.build(t, 0, 1, 3)
	cliIn = listen(cli)
	var cookie [descriptor.CookieLen]byte
	rand.Read(cookie[:])
	send(t, cli, descriptor.CmdEstablishRendezvous, cookie[:])
	cliIn.next(t, descriptor.CmdRendezvousEstablished)
	svc = tn.build(t, 2, 1, 3)
	svcIn = listen(svc)
	send(t, svc, descriptor.CmdRendezvous1, descriptor.Rendezvous1{Cookie: cookie}.Marshal())
	cliIn.next(t, descriptor.CmdRendezvous2)
	return cli, svc, cliIn, svcIn
}

// A rendezvous point bills each cell that crosses a splice once, to the
// client's circuit: the service's circuit pays for its RENDEZVOUS1 only,
// however much HS_DATA it moves either way. (Metering both sides billed
// every crossing twice, and made a service fund a channel to every
// rendezvous point a client chose.)
func TestSpliceBilledOnceToTheClientSide(t *testing.T) {
	m := &countingMeter{allowance: 1 << 20}
	cli, svc, cliIn, svcIn := splice(t, m)
	const n = 20
	for range n {
		send(t, cli, descriptor.CmdHSData, []byte("to service"))
		send(t, svc, descriptor.CmdHSData, []byte("to client"))
	}
	for range n {
		svcIn.next(t, descriptor.CmdHSData)
		cliIn.next(t, descriptor.CmdHSData)
	}
	// The client's circuit: ESTABLISH_RENDEZVOUS, RENDEZVOUS_ESTABLISHED,
	// RENDEZVOUS2 and every HS_DATA, both ways.
	if got, want := m.counted(0), uint64(3+2*n); got != want {
		t.Errorf("the client's circuit was billed %d cells, want %d", got, want)
	}
	if got := m.counted(1); got != 1 {
		t.Errorf("the service's circuit was billed %d cells, want 1 (its RENDEZVOUS1)", got)
	}
}

// Written as a client and a service working together would try it: the
// service's circuit moves HS_DATA unmetered, so the pair lets the client's
// circuit run out of credit and has the service push on regardless. The
// client's circuit takes nothing more once paused: the service's cells
// pile up at the rendezvous point until the service's circuit overruns
// its queue and the splice is torn down. And cells other than HS_DATA
// on the service's circuit are billed as on any circuit.
func TestSpliceUnpaidClientSideCarriesNothing(t *testing.T) {
	const allowance = 30
	m := &countingMeter{allowance: allowance}
	_, svc, cliIn, _ := splice(t, m)
	sent := 0
send:
	for ; sent < 3000; sent++ { // beyond the splice queue (2048) and the allowance
		select {
		case <-svc.Done():
			break send
		default:
		}
		if svc.SendTo(t.Context(), 2, circuit.RelayCell{Command: descriptor.CmdHSData, Body: []byte("free ride")}) != nil {
			break
		}
	}
	select {
	case <-svc.Done():
	case <-time.After(30 * time.Second):
		t.Fatalf("the service's circuit sent %d HS_DATA cells to a client circuit out of credit and was not torn down", sent)
	}
	got := 0
	for len(cliIn) > 0 {
		if rc := <-cliIn; rc.Command == descriptor.CmdHSData {
			got++
		}
	}
	// The cell that found the client's circuit out of credit went out;
	// none after it.
	if billed := m.counted(0); billed > allowance+1 {
		t.Errorf("the client's circuit moved %d cells on an allowance of %d", billed, allowance)
	}
	if got > allowance-3+1 {
		t.Errorf("the client received %d HS_DATA cells on an allowance of %d", got, allowance)
	}
	if m.counted(1) != 1 {
		t.Errorf("the service's circuit was billed %d cells for HS_DATA", m.counted(1))
	}

	// Other cells of a service's circuit are billed.
	m2 := &countingMeter{allowance: 1 << 20}
	_, svc2, _, _ := splice(t, m2)
	const drops = 10
	for range drops {
		send(t, svc2, circuit.RelayDrop, nil)
	}
	deadline := time.Now().Add(20 * time.Second)
	for m2.counted(1) < 1+drops && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if got := m2.counted(1); got != 1+drops {
		t.Errorf("the service's circuit was billed %d cells for RENDEZVOUS1 and %d drops", got, drops)
	}
}
