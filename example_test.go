package obol_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"

	"github.com/obolnet/obol"
	"github.com/obolnet/obol/internal/localnet"
)

// A client joins a network through one of its relays and fetches a page
// through a three-hop circuit. Here the network is four relays on
// loopback, and the page is served on loopback too.
func Example() {
	network, web, stop := startTestNetwork()
	defer stop()
	ctx, cancel := context.WithCancel(context.Background())

	c, err := obol.NewClient(obol.ClientConfig{Bootstrap: network.Bootstrap(), AllowSameSubnet: true})
	if err != nil {
		log.Fatal(err)
	}
	done := make(chan error)
	go func() { done <- c.Run(ctx) }()
	conn, err := c.Dial(ctx, "tcp", web)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Fprint(conn, "GET / HTTP/1.0\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		log.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	conn.Close()
	fmt.Print(string(body))

	cancel()
	if err := <-done; err != nil {
		log.Fatal(err)
	}
	// Output: hello through obol
}

// Dial's errors carry a kind that tells the embedder what to do, whatever
// their text. Dial returns before the exit answers, so the exit's answer
// (a refusal, say) comes with the first read, and has a kind too.
func ExampleKindOf() {
	var c *obol.Client // a running client, as in the example above
	ctx := context.Background()
	for range 3 {
		conn, err := c.Dial(ctx, "tcp", "example.com:80")
		if err == nil {
			fmt.Fprint(conn, "GET / HTTP/1.0\r\n\r\n")
			_, err = http.ReadResponse(bufio.NewReader(conn), nil)
			conn.Close()
		}
		switch obol.KindOf(err) {
		case obol.KindRetry, obol.KindOtherPath:
			continue // a new Dial builds new circuits
		case obol.KindRefused, obol.KindNotAllowed, obol.KindNotFound:
			log.Print("the destination refused us or does not exist: ", err)
		default:
			if err != nil {
				log.Print(err)
			}
		}
		return
	}
}

// startTestNetwork starts four relays (relay 1 an exit) and a web server,
// all on loopback, and returns what stops them.
func startTestNetwork() (*localnet.Network, string, func()) {
	n, err := localnet.Start(context.Background(), localnet.Config{Relays: 4})
	if err != nil {
		log.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "hello through obol")
	}))
	return n, ln.Addr().String(), func() { ln.Close(); n.Close() }
}
