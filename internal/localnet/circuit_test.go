package localnet

import (
	"context"
	"crypto/rand"
	"io"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/obolnet/obol/circuit/client"
	"github.com/obolnet/obol/circuit/link"
	"github.com/obolnet/obol/descriptor"
	"github.com/obolnet/obol/dht"
)

// hopFor turns a verified descriptor into a path hop.
func hopFor(t *testing.T, d *descriptor.Relay) client.Hop {
	h, err := Hop(d)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// The relays of a local network carry circuits built from the
// descriptors a client sampled from the DHT: onion keys, addresses and
// exit policies all come from there.
func TestCircuitFromSampledDescriptors(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n, err := Start(ctx, Config{Relays: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	c, err := n.NewClient(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	n.Discover(ctx, c)
	var exit *descriptor.Relay
	var others []*descriptor.Relay
	for _, d := range c.Known() {
		if exit == nil && d.AcceptsPort(80) {
			exit = d
		} else {
			others = append(others, d)
		}
	}
	if exit == nil || len(others) < 2 {
		t.Fatalf("no exit among %d relays", len(c.Known()))
	}

	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello through obol")
	})}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go srv.Serve(ln)
	defer srv.Close()

	key, _, _ := crypto.GenerateEd25519Key(rand.Reader)
	h, err := dht.NewHost(dht.HostConfig{Identity: key})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	links := link.NewManager(h, link.Config{})
	links.Start()
	defer links.Close()
	path := []client.Hop{hopFor(t, others[0]), hopFor(t, others[1]), hopFor(t, exit)}
	circ, err := client.Build(ctx, links, path)
	if err != nil {
		t.Fatal(err)
	}
	defer circ.Close()
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
		host, port, _ := net.SplitHostPort(addr)
		p, _ := strconv.Atoi(port)
		return circ.Dial(ctx, host, uint16(p))
	}}}
	resp, err := hc.Get("http://" + ln.Addr().String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "hello through obol" {
		t.Fatalf("got %q", body)
	}
}
