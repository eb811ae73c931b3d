package circuit_test

import (
	"crypto/rand"
	"fmt"
	"time"

	"github.com/obolnet/obol/circuit"
)

// Example shows a one-round-trip 3-hop build and one cell each way, with
// the relays in memory. In the network, each arrow is a link cell on a
// channel: Cell{CircID, Command, Payload}.
func Example() {
	var relays []*circuit.Responder
	var path []circuit.HopSpec
	for i := 0; i < 3; i++ {
		k, _ := circuit.GenerateOnionKey(rand.Reader) // published in the descriptor
		r, _ := circuit.NewResponder(circuit.ResponderConfig{}, []circuit.OnionKey{k})
		relays = append(relays, r)
		path = append(path, circuit.HopSpec{PeerID: []byte(fmt.Sprint("peer-", i)), OnionKey: k.Public})
	}

	// Client → hop 0: CREATE. Each relay forwards a CREATE to Action.Next.
	build, create, _ := circuit.NewBuild(rand.Reader, time.Now(), path)
	var hops []*circuit.RelayCircuit
	var act circuit.Action
	for _, r := range relays {
		c, a, err := r.Create(create)
		if err != nil {
			panic(err)
		}
		hops, act, create = append(hops, c), a, a.Payload
	}
	// Last hop → client: CREATED, each relay wrapping its own reply.
	created := act.Payload
	for i := len(hops) - 2; i >= 0; i-- {
		a, _ := hops[i].Handle(circuit.FromNext, circuit.CmdCreated, created)
		created = a.Payload
	}
	client, _ := build.Finish(created)

	// A cell to the exit (hop 2): hops 0 and 1 forward it, hop 2 delivers.
	p, _ := client.Seal(2, circuit.RelayCell{Command: circuit.RelayData, StreamID: 1, Body: []byte("hello")})
	for i, h := range hops {
		a, _ := h.Handle(circuit.FromPrev, circuit.CmdRelay, p)
		if a.Kind == circuit.ActDeliver {
			fmt.Printf("hop %d got %q\n", i, a.Cell.Body)
		}
		p = a.Payload
	}

	// A cell from the middle hop back to the client.
	p, _ = hops[1].Originate(circuit.RelayCell{Command: circuit.RelayData, StreamID: 1, Body: []byte("hi")})
	a, _ := hops[0].Handle(circuit.FromNext, circuit.CmdRelay, p)
	hop, rc, _ := client.Receive(circuit.CmdRelay, a.Payload)
	fmt.Printf("client got %q from hop %d\n", rc.Body, hop)
	// Output:
	// hop 2 got "hello"
	// client got "hi" from hop 1
}
