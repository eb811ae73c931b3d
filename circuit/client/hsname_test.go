package client_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/proxy"

	"github.com/obolnet/obol/circuit/client"
	"github.com/obolnet/obol/circuit/socks"
	"github.com/obolnet/obol/descriptor"
)

// hsNames are names of hidden services in the spellings an application
// may use: any case, trailing dots, subdomains.
var hsNames = []string{
	"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.obol",
	"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.obol.",
	"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA.OBOL.",
	"www.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.Obol..",
	"mistyped.obol",
	"obol.",
}

// controlName is an ordinary name: it must reach the exit, which shows
// that the exits' resolvers would see a hidden-service name if one leaked.
const controlName = "control.test"

// entryPoint opens a connection to host:port one way a client can.
type entryPoint struct {
	name string
	dial func(ctx context.Context, host string, port uint16) (net.Conn, error)
}

// No hidden-service name reaches an exit from any entry point: the SOCKS5,
// SOCKS4a and HTTP CONNECT proxy spoken over TCP by real client code, the
// manager's Dial, and a circuit's Dial, Resolve and BuildDial. An
// ordinary name through each entry point reaches the exits' resolver.
func TestHiddenServiceNamesNeverReachAnExit(t *testing.T) {
	n := newExitNet(t, 3)
	m := n.manager(client.Config{})
	srv, err := socks.NewServer(socks.Config{Dialer: m})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	serveDone := make(chan struct{})
	go func() { defer close(serveDone); srv.Serve(ctx, ln) }()
	defer func() { srv.Close(); <-serveDone }()
	proxyAddr := ln.Addr().String()

	circ, err := n.Build(ctx, 0, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer circ.Close()
	entries := []entryPoint{
		{"socks5", func(ctx context.Context, host string, port uint16) (net.Conn, error) {
			d, err := proxy.SOCKS5("tcp", proxyAddr, nil, proxy.Direct)
			if err != nil {
				return nil, err
			}
			return d.(proxy.ContextDialer).DialContext(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(int(port))))
		}},
		{"socks4a", func(ctx context.Context, host string, port uint16) (net.Conn, error) {
			return dialSOCKS4a(ctx, proxyAddr, host, port)
		}},
		{"http-connect", func(ctx context.Context, host string, port uint16) (net.Conn, error) {
			return dialHTTPConnect(ctx, proxyAddr, host, port)
		}},
		{"manager-dial", func(ctx context.Context, host string, port uint16) (net.Conn, error) {
			return m.Dial(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(int(port))))
		}},
		{"circuit-dial", func(ctx context.Context, host string, port uint16) (net.Conn, error) {
			return circ.Dial(ctx, host, port)
		}},
		{"circuit-resolve", func(ctx context.Context, host string, port uint16) (net.Conn, error) {
			if _, err := circ.Resolve(ctx, host); err != nil {
				return nil, err
			}
			return circ.Dial(ctx, "127.0.0.1", port)
		}},
		{"build-dial", func(ctx context.Context, host string, port uint16) (net.Conn, error) {
			c, s, err := client.BuildDial(ctx, n.links, n.Path(1, 2, 0), host, port, nil)
			if err == nil {
				t.Cleanup(func() { c.Close() })
			}
			return s, err
		}},
	}
	echoPort, _ := strconv.Atoi(n.echo)
	for _, e := range entries {
		t.Run(e.name, func(t *testing.T) {
			for _, host := range hsNames {
				if !descriptor.IsHSHost(host) {
					t.Fatalf("%q is not a hidden-service name", host)
				}
				conn, err := e.dial(ctx, host, uint16(echoPort))
				if err == nil {
					conn.Close()
					t.Errorf("%s to %q: connected", e.name, host)
				}
				var se *socksReplyError
				switch {
				case errors.As(err, &se) && !se.refused():
					t.Errorf("%s to %q: reply %v, want a refusal by rule", e.name, host, se)
				case !errors.As(err, &se) && !errors.Is(err, client.ErrHSName) && e.name != "socks5":
					t.Errorf("%s to %q: %v, want ErrHSName", e.name, host, err)
				}
			}
			before, dials := len(n.dns.Asked()), n.exitDials()
			conn, err := e.dial(ctx, controlName, uint16(echoPort))
			if err != nil {
				t.Fatalf("%s to %s: %v", e.name, controlName, err)
			}
			echoes(t, conn)
			if len(n.dns.Asked()) == before || n.exitDials() == dials {
				t.Errorf("%s to %s: the exits' resolver was never asked, or no exit connected", e.name, controlName)
			}
		})
	}
	for _, name := range n.dns.Asked() {
		if descriptor.IsHSHost(strings.ToLower(name)) {
			t.Errorf("an exit resolved the hidden-service name %q", name)
		}
	}
}

// socks5 refusals are reported by x/net/proxy as text; check the code.
func TestSOCKS5ReplyForHiddenServiceName(t *testing.T) {
	m := newExitNet(t, 3).manager(client.Config{})
	_, err := m.DialStream(context.Background(), socks.Request{Target: socks.Target{Host: hsNames[1], Port: 80}})
	if got := socks.ReplyCode5(err); got != socks.Rep5NotAllowed {
		t.Errorf("reply %#x, want not allowed by ruleset (%#x)", got, socks.Rep5NotAllowed)
	}
	if got := socks.HTTPStatus(err); got != http.StatusForbidden {
		t.Errorf("HTTP status %d, want 403", got)
	}
}

func echoes(t *testing.T, c net.Conn) {
	t.Helper()
	defer c.Close()
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("echo: %q, %v", buf, err)
	}
}

// socksReplyError is a proxy's refusal as a SOCKS4 code or HTTP status.
type socksReplyError struct {
	socks4 byte
	status int
}

func (e *socksReplyError) Error() string {
	return fmt.Sprintf("proxy refused: socks4 %#x, http %d", e.socks4, e.status)
}

// refused: SOCKS4 has one failure code; HTTP says 403.
func (e *socksReplyError) refused() bool {
	return e.socks4 == socks.Rep4Rejected || e.status == http.StatusForbidden
}

// dialSOCKS4a speaks SOCKS4a to the proxy at addr.
func dialSOCKS4a(ctx context.Context, addr, host string, port uint16) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	req := []byte{4, 1, 0, 0, 0, 0, 0, 1}
	binary.BigEndian.PutUint16(req[2:], port)
	req = append(req, 0)
	req = append(append(req, host...), 0)
	if _, err := c.Write(req); err != nil {
		c.Close()
		return nil, err
	}
	reply := make([]byte, 8)
	if _, err := io.ReadFull(c, reply); err != nil {
		c.Close()
		return nil, err
	}
	if reply[1] != socks.Rep4Granted {
		c.Close()
		return nil, &socksReplyError{socks4: reply[1]}
	}
	return c, nil
}

// dialHTTPConnect asks the proxy at addr for a tunnel with HTTP CONNECT.
func dialHTTPConnect(ctx context.Context, addr, host string, port uint16) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	target := net.JoinHostPort(host, strconv.Itoa(int(port)))
	if _, err := fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", target, target); err != nil {
		c.Close()
		return nil, err
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil {
		c.Close()
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		c.Close()
		return nil, &socksReplyError{status: resp.StatusCode}
	}
	if br.Buffered() > 0 {
		c.Close()
		return nil, errors.New("proxy sent data before the tunnel's")
	}
	return c, nil
}
