package router_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"testing"
	"time"

	"github.com/obolnet/obol/circuit"
	"github.com/obolnet/obol/circuit/client"
	"github.com/obolnet/obol/descriptor"
	"github.com/obolnet/obol/router"
)

// replies collects the hidden-service cells the last hop of a circuit
// sends back.
type replies chan circuit.RelayCell

func listen(c *client.Circuit) replies {
	ch := make(replies, 64)
	last := len(c.Hops()) - 1
	c.SetControl(func(hop int, rc circuit.RelayCell) {
		if hop == last {
			rc.Body = append([]byte(nil), rc.Body...)
			ch <- rc
		}
	})
	return ch
}

func (r replies) next(t *testing.T, want circuit.RelayCommand) []byte {
	t.Helper()
	select {
	case rc := <-r:
		if rc.Command != want {
			t.Fatalf("got %v, want %v", rc.Command, want)
		}
		return rc.Body
	case <-time.After(10 * time.Second):
		t.Fatalf("no %v", want)
	}
	return nil
}

func send(t *testing.T, c *client.Circuit, cmd circuit.RelayCommand, body []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.SendTo(ctx, len(c.Hops())-1, circuit.RelayCell{Command: cmd, Body: body}); err != nil {
		t.Fatal(err)
	}
}

// An intro point passes INTRODUCE1 to the service circuit registered
// under the auth key, refuses an unknown key and a replay, and limits the
// introductions of one client circuit.
func TestIntroPoint(t *testing.T) {
	tn := newTestNet(t, 4, nil)
	svc := tn.build(t, 0, 1, 3)
	svcIn := listen(svc)
	_, auth, _ := ed25519.GenerateKey(rand.Reader)
	send(t, svc, descriptor.CmdEstablishIntro, descriptor.NewEstablishIntro(auth, time.Now()).Marshal())
	if b := svcIn.next(t, descriptor.CmdIntroEstablished); !bytes.Equal(b, []byte{0}) {
		t.Fatalf("INTRO_ESTABLISHED %x", b)
	}
	cli := tn.build(t, 2, 1, 3)
	cliIn := listen(cli)
	intro := func(key [32]byte, fill byte) byte {
		m := descriptor.Introduce{AuthKey: key, Handshake: bytes.Repeat([]byte{fill}, 100)}
		send(t, cli, descriptor.CmdIntroduce1, m.Marshal())
		return cliIn.next(t, descriptor.CmdIntroduceAck)[0]
	}
	key := [32]byte(auth.Public().(ed25519.PublicKey))
	if s := intro(key, 1); s != descriptor.IntroAckOK {
		t.Fatalf("first INTRODUCE1: status %d", s)
	}
	got := svcIn.next(t, descriptor.CmdIntroduce2)
	if m, err := descriptor.ParseIntroduce(got); err != nil || m.AuthKey != key || m.Handshake[0] != 1 {
		t.Fatalf("INTRODUCE2 %x (%v)", got, err)
	}
	if s := intro(key, 1); s != descriptor.IntroAckReplay {
		t.Fatalf("replay: status %d", s)
	}
	if s := intro([32]byte{7}, 2); s != descriptor.IntroAckUnknown {
		t.Fatalf("unknown key: status %d", s)
	}
	limited := false
	for i := range 10 {
		if intro(key, byte(10+i)) == descriptor.IntroAckRateLimited {
			limited = true
			break
		}
	}
	if !limited {
		t.Fatal("one client circuit introduced without limit")
	}
}

// A rendezvous point joins the service's circuit to the client's waiting
// under the cookie, hands over the handshake and passes HS_DATA both ways;
// closing one side closes the other.
func TestRendezvousPoint(t *testing.T) {
	tn := newTestNet(t, 4, nil)
	cli := tn.build(t, 0, 1, 3)
	cliIn := listen(cli)
	var cookie [descriptor.CookieLen]byte
	rand.Read(cookie[:])
	send(t, cli, descriptor.CmdEstablishRendezvous, cookie[:])
	cliIn.next(t, descriptor.CmdRendezvousEstablished)

	svc := tn.build(t, 2, 1, 3)
	svcIn := listen(svc)
	r1 := descriptor.Rendezvous1{Cookie: cookie, Handshake: [descriptor.HandshakeRspLen]byte{1, 2, 3}}
	send(t, svc, descriptor.CmdRendezvous1, r1.Marshal())
	if b := cliIn.next(t, descriptor.CmdRendezvous2); !bytes.Equal(b, r1.Handshake[:]) {
		t.Fatalf("RENDEZVOUS2 %x", b)
	}
	send(t, cli, descriptor.CmdHSData, []byte("to service"))
	if b := svcIn.next(t, descriptor.CmdHSData); string(b) != "to service" {
		t.Fatalf("service got %q", b)
	}
	send(t, svc, descriptor.CmdHSData, []byte("to client"))
	if b := cliIn.next(t, descriptor.CmdHSData); string(b) != "to client" {
		t.Fatalf("client got %q", b)
	}
	for _, k := range tn.Relays[3].Router.Circuits() {
		if k.Next != "" {
			t.Fatalf("the rendezvous point names a next hop %s", k.Next)
		}
	}
	svc.Close()
	select {
	case <-cli.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("client side of the splice outlived the service side")
	}

	// A second RENDEZVOUS1 with the used cookie finds nothing.
	late := tn.build(t, 2, 1, 3)
	send(t, late, descriptor.CmdRendezvous1, r1.Marshal())
	select {
	case <-late.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("RENDEZVOUS1 with a spent cookie accepted")
	}
}

// A RENDEZVOUS1 that overtakes the client's ESTABLISH_RENDEZVOUS is held
// until the cookie comes.
func TestEarlyRendezvous1(t *testing.T) {
	tn := newTestNet(t, 4, nil)
	var cookie [descriptor.CookieLen]byte
	rand.Read(cookie[:])
	svc := tn.build(t, 2, 1, 3)
	svcIn := listen(svc)
	r1 := descriptor.Rendezvous1{Cookie: cookie, Handshake: [descriptor.HandshakeRspLen]byte{4, 5, 6}}
	send(t, svc, descriptor.CmdRendezvous1, r1.Marshal())
	cli := tn.build(t, 0, 1, 3)
	cliIn := listen(cli)
	send(t, cli, descriptor.CmdEstablishRendezvous, cookie[:])
	cliIn.next(t, descriptor.CmdRendezvousEstablished)
	if b := cliIn.next(t, descriptor.CmdRendezvous2); !bytes.Equal(b, r1.Handshake[:]) {
		t.Fatalf("RENDEZVOUS2 %x", b)
	}
	send(t, cli, descriptor.CmdHSData, []byte("joined"))
	if b := svcIn.next(t, descriptor.CmdHSData); string(b) != "joined" {
		t.Fatalf("service got %q", b)
	}
}

// Without a directory a relay says it does not fetch descriptors.
func TestFetchUnavailable(t *testing.T) {
	tn := newTestNet(t, 3, nil)
	c := tn.build(t, 0, 1, 2)
	in := listen(c)
	send(t, c, descriptor.CmdHSFetch, make([]byte, 32))
	b := in.next(t, descriptor.CmdHSFetched)
	if m, err := descriptor.ParseHSFetched(b); err != nil || m.Status != descriptor.FetchUnavailable {
		t.Fatalf("HS_FETCHED %x (%v)", b, err)
	}
}

// A client circuit that waits at a rendezvous point for a service that
// never comes is torn down after the wait (TestRendezvousPoint shows one
// joined in time).
func TestRendezvousWaitExpires(t *testing.T) {
	defer router.SetRendezvousWait(300 * time.Millisecond)()
	tn := newTestNet(t, 3, nil)
	idle := tn.build(t, 0, 1, 2)
	in := listen(idle)
	var cookie [descriptor.CookieLen]byte
	rand.Read(cookie[:])
	send(t, idle, descriptor.CmdEstablishRendezvous, cookie[:])
	in.next(t, descriptor.CmdRendezvousEstablished)
	select {
	case <-idle.Done():
	case <-time.After(20 * time.Second):
		t.Fatal("a client circuit waited at the rendezvous point without end")
	}
}
