package circuit

import (
	"errors"
	"testing"
)

func TestRelayHandle(t *testing.T) {
	tn := newTestNet(t, 2)
	bc := tn.build(t, newDetRand("handle"))
	mid := bc.relays[0]
	data := func(hop int) []byte {
		p, err := bc.client.Seal(hop, RelayCell{Command: RelayData, StreamID: 1, Body: []byte("d")})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	back, _ := bc.relays[1].Originate(RelayCell{Command: RelayData, StreamID: 1})
	for _, tc := range []struct {
		name string
		from Direction
		cmd  Command
		p    []byte
		kind ActionKind
		err  error
	}{
		{"relay for me", FromPrev, CmdRelay, data(0), ActDeliver, nil},
		{"relay for next", FromPrev, CmdRelay, data(1), ActForward, nil},
		{"relay backward", FromNext, CmdRelay, back, ActBackward, nil},
		{"padding", FromPrev, CmdPadding, make([]byte, PayloadLen), ActNone, nil},
		{"destroy", FromNext, CmdDestroy, DestroyPayload(DestroyTimeout), ActClose, nil},
		{"bad destroy", FromPrev, CmdDestroy, DestroyPayload(200), 0, ErrUnknownDestroyCode},
		{"create on a circuit", FromPrev, CmdCreate, make([]byte, PayloadLen), 0, ErrUnexpectedCell},
		{"created from prev", FromPrev, CmdCreated, make([]byte, PayloadLen), 0, ErrUnexpectedCell},
		{"created twice", FromNext, CmdCreated, bc.createds[1], 0, ErrUnexpectedCell},
		{"early from next", FromNext, CmdRelayEarly, make([]byte, PayloadLen), 0, ErrUnexpectedCell},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := mid.Handle(tc.from, tc.cmd, tc.p)
			if !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if err == nil && a.Kind != tc.kind {
				t.Fatalf("kind = %d, want %d", a.Kind, tc.kind)
			}
			if tc.cmd == CmdDestroy && err == nil && a.Reason != DestroyTimeout {
				t.Fatalf("reason %v", a.Reason)
			}
		})
	}
}

func TestClientReceive(t *testing.T) {
	bc := newTestNet(t, 1).build(t, newDetRand("receive"))
	p, _ := bc.relays[0].Originate(RelayCell{Command: RelayEnd, StreamID: 3, Body: []byte{byte(EndDone)}})
	hop, rc, err := bc.client.Receive(CmdRelay, p)
	if err != nil || hop != 0 || rc.Command != RelayEnd {
		t.Fatalf("relay: %d %v %v", hop, rc.Command, err)
	}
	_, _, err = bc.client.Receive(CmdDestroy, DestroyPayload(DestroyHibernating))
	var de *DestroyedError
	if !errors.As(err, &de) || de.Reason != DestroyHibernating || !errors.Is(err, ErrDestroyed) {
		t.Fatalf("destroy: %v", err)
	}
	if hop, _, err := bc.client.Receive(CmdPadding, nil); err != nil || hop != -1 {
		t.Fatalf("padding: %d %v", hop, err)
	}
	if _, _, err := bc.client.Receive(CmdCreate, nil); !errors.Is(err, ErrUnexpectedCell) {
		t.Fatalf("create: %v", err)
	}
}
