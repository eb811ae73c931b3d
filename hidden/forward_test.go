package hidden_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"net"
	"testing"
	"time"

	"github.com/obolnet/obol/hidden"
)

// A server that speaks first (as ssh does) behind Forward: its banner
// arrives, then a megabyte is echoed byte-exact, half-close included; an
// unmapped port is refused.
func TestForwardServerSpeaksFirst(t *testing.T) {
	tn := newTestNet(t, 6)
	l, _ := tn.listen(newKey(t))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	banner := []byte("SSH-2.0-obol_test\r\n")
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.Write(banner)
				io.Copy(c, c) // echo until the client half-closes
			}()
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go hidden.Forward(ctx, l, map[uint16]string{22: ln.Addr().String()})

	c, _ := tn.client()
	dctx, dcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer dcancel()
	conn, err := c.Dial(dctx, "tcp", l.Address()+":22")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	got := make([]byte, len(banner))
	if _, err := io.ReadFull(conn, got); err != nil || !bytes.Equal(got, banner) {
		t.Fatalf("banner %q %v", got, err)
	}
	data := make([]byte, 1<<20)
	rand.Read(data)
	go func() {
		conn.Write(data)
		conn.(interface{ CloseWrite() error }).CloseWrite()
	}()
	echoed, err := io.ReadAll(conn)
	if err != nil || !bytes.Equal(echoed, data) {
		t.Fatalf("echo: %d of %d bytes, %v", len(echoed), len(data), err)
	}

	refused, err := c.Dial(dctx, "tcp", l.Address()+":23")
	if err != nil {
		t.Fatal(err)
	}
	refused.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := refused.Read(make([]byte, 1)); n != 0 || err == nil {
		t.Fatalf("unmapped port answered: %d %v", n, err)
	}
}
