package circuittest

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"sync"

	"golang.org/x/net/dns/dnsmessage"
)

// DNS is a DNS server on loopback UDP that answers A and AAAA queries
// from a table, or every A query with 127.0.0.1, and notes every name
// asked: what an exit's resolver, and so public DNS, would see.
type DNS struct {
	conn  net.PacketConn
	names map[string][]netip.Addr // lower-case FQDN → addresses; nil: all loopback
	done  chan struct{}

	mu    sync.Mutex
	asked []string // every question name asked, in order, as asked
}

// StartDNS starts a DNS server. names maps lower-case FQDNs ("a.example.")
// to addresses, and the server answers that other names do not exist;
// with names nil it answers every A query with 127.0.0.1. Close stops it.
func StartDNS(names map[string][]string) (*DNS, error) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	d := &DNS{conn: pc, done: make(chan struct{})}
	if names != nil {
		d.names = map[string][]netip.Addr{}
		for n, as := range names {
			for _, a := range as {
				d.names[n] = append(d.names[n], netip.MustParseAddr(a))
			}
		}
	}
	go func() { defer close(d.done); d.serve() }()
	return d, nil
}

// Close stops the server.
func (d *DNS) Close() error {
	err := d.conn.Close()
	<-d.done
	return err
}

// Resolver resolves through the server only.
func (d *DNS) Resolver() *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var dd net.Dialer
		return dd.DialContext(ctx, "udp", d.conn.LocalAddr().String())
	}}
}

// Asked returns the question names asked so far, in order, as asked.
func (d *DNS) Asked() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.asked...)
}

func (d *DNS) serve() {
	buf := make([]byte, 1500)
	for {
		n, from, err := d.conn.ReadFrom(buf)
		if err != nil {
			return
		}
		if resp, err := d.answer(buf[:n]); err == nil {
			d.conn.WriteTo(resp, from)
		}
	}
}

func (d *DNS) answer(req []byte) ([]byte, error) {
	var p dnsmessage.Parser
	h, err := p.Start(req)
	if err != nil {
		return nil, err
	}
	q, err := p.Question()
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	d.asked = append(d.asked, q.Name.String())
	d.mu.Unlock()
	addrs, known := d.lookup(q.Name.String())
	h.Response, h.Authoritative = true, true
	if !known {
		h.RCode = dnsmessage.RCodeNameError
	}
	b := dnsmessage.NewBuilder(nil, h)
	b.EnableCompression()
	b.StartQuestions()
	b.Question(q)
	b.StartAnswers()
	rh := dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 60}
	for _, a := range addrs {
		switch {
		case a.Is4() && q.Type == dnsmessage.TypeA:
			b.AResource(rh, dnsmessage.AResource{A: a.As4()})
		case a.Is6() && q.Type == dnsmessage.TypeAAAA:
			b.AAAAResource(rh, dnsmessage.AAAAResource{AAAA: a.As16()})
		}
	}
	return b.Finish()
}

// lookup is what the server answers for name, and whether it exists.
func (d *DNS) lookup(name string) ([]netip.Addr, bool) {
	if d.names == nil {
		return []netip.Addr{netip.AddrFrom4([4]byte{127, 0, 0, 1})}, true
	}
	addrs, ok := d.names[strings.ToLower(name)]
	return addrs, ok
}

// TB is what StartTestDNS needs of a test or benchmark (testing.TB has it).
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
	Cleanup(func())
}

// StartTestDNS is StartDNS for a test: it fails the test on error and
// stops the server at the test's end.
func StartTestDNS(t TB, names map[string][]string) *DNS {
	t.Helper()
	d, err := StartDNS(names)
	if err != nil {
		t.Fatalf("test DNS: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}
