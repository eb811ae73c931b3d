package router

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"

	"github.com/obolnet/obol/descriptor"
)

// testService registers a service circuit under auth with a queue of its
// own, standing in for the circuit's drain.
func testService(t *testing.T, p *hiddenPoints, auth byte) *hop {
	t.Helper()
	h := &hop{hs: &hsState{in: make(chan queued, spliceQueue), done: make(chan struct{})}}
	if !p.register(h, [32]byte{auth}) {
		t.Fatalf("service %d not registered", auth)
	}
	return h
}

func introBody(auth byte, n uint64) []byte {
	hs := bytes.Repeat([]byte{0}, 100)
	binary.BigEndian.PutUint64(hs, n)
	return descriptor.Introduce{AuthKey: [32]byte{auth}, Handshake: hs}.Marshal()
}

// An attacker floods introductions to twenty service circuits it runs at
// an intro point, for a minute of the relay's clock; an honest service
// there still gets its introductions through, and the relay passes no
// more than its relay-wide rate (plus the bursts) in all.
func TestIntroFloodDoesNotStarveOtherServices(t *testing.T) {
	clock := time.Unix(1_800_000_000, 0)
	p := &hiddenPoints{now: func() time.Time { return clock }}
	const attackers = 20
	for i := range attackers {
		testService(t, p, byte(100+i))
	}
	honest := testService(t, p, 1)
	var n uint64
	introduce := func(auth byte) byte {
		n++
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.introduceLocked(introBody(auth, n), 1)
	}
	accepted, honestOK, honestTried := 0, 0, 0
	for tick := range 600 { // 100 ms steps
		clock = clock.Add(100 * time.Millisecond)
		for i := range attackers {
			for range 50 { // 500 per second to each attacker circuit
				if introduce(byte(100+i)) == descriptor.IntroAckOK {
					accepted++
				}
			}
		}
		if tick%10 == 0 { // the honest service: one introduction a second
			honestTried++
			if introduce(1) == descriptor.IntroAckOK {
				honestOK++
				accepted++
			}
		}
		for len(honest.hs.in) > 0 {
			<-honest.hs.in
		}
	}
	if honestOK != honestTried {
		t.Fatalf("honest service: %d of %d introductions passed under the flood", honestOK, honestTried)
	}
	rate, burst := introShare(attackers + 1)
	if limit := 60*introRateAll + (attackers+1)*int(burst); accepted > limit {
		t.Fatalf("%d introductions passed in 60 s, more than %d", accepted, limit)
	}
	t.Logf("60 s of flood: %d introductions passed (share %.1f/s per circuit), honest %d/%d", accepted, rate, honestOK, honestTried)
}

// The relay carries at most maxIntroCircuits service circuits, so that
// registering many cannot shrink a share below introRateAll/maxIntroCircuits.
func TestIntroCircuitsBounded(t *testing.T) {
	p := &hiddenPoints{}
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := range maxIntroCircuits {
		h := &hop{hs: &hsState{}}
		var k [32]byte
		binary.BigEndian.PutUint32(k[:], uint32(i))
		if !p.register(h, k) {
			t.Fatalf("circuit %d refused", i)
		}
	}
	if p.register(&hop{hs: &hsState{}}, [32]byte{0xff, 0xff, 0xff, 0xff}) {
		t.Fatal("one service circuit beyond the bound registered")
	}
	if p.register(&hop{hs: &hsState{}}, [32]byte{}) {
		t.Fatal("an auth key registered twice")
	}
	if rate, burst := introShare(maxIntroCircuits); rate <= 0 || burst < 1 {
		t.Fatalf("share at the bound: %v/s, burst %v", rate, burst)
	}
}
