package socks

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"net"
	"net/netip"
	"strconv"
)

// Dialer opens a stream to req's target; the circuit layer implements it.
// It must not resolve req.Host locally, must honour ctx's deadline and
// cancellation, and must never let streams with different req.Isolation
// share a circuit. An error's kind (errkind.Of) chooses the reply; the
// errors of this package (ErrNotAllowed, ErrHostUnreachable, ...) carry
// the kinds of their replies.
type Dialer interface {
	DialStream(ctx context.Context, req Request) (net.Conn, error)
}

// DialerFunc adapts a function to Dialer.
type DialerFunc func(ctx context.Context, req Request) (net.Conn, error)

// DialStream calls f.
func (f DialerFunc) DialStream(ctx context.Context, req Request) (net.Conn, error) {
	return f(ctx, req)
}

// Protocol is the proxy protocol a request arrived with.
type Protocol uint8

const (
	SOCKS5 Protocol = iota + 1
	SOCKS4
	SOCKS4a
	HTTPConnect
)

func (p Protocol) String() string {
	switch p {
	case SOCKS5:
		return "socks5"
	case SOCKS4:
		return "socks4"
	case SOCKS4a:
		return "socks4a"
	case HTTPConnect:
		return "http-connect"
	}
	return "unknown"
}

// Target is a destination as the client named it. Exactly one of Host and
// IP is set. A domain name that is an IP literal is stored as IP.
type Target struct {
	Host string     // a DNS name, to be resolved by the exit; never locally
	IP   netip.Addr // an address given by the client
	Port uint16
}

// String returns host:port (IPv6 in brackets).
func (t Target) String() string {
	h := t.Host
	if t.IP.IsValid() {
		h = t.IP.String()
	}
	return net.JoinHostPort(h, strconv.Itoa(int(t.Port)))
}

// targetFromName returns the target for a name received on the wire,
// turning IP literals into addresses (no lookup happens).
func targetFromName(name string, port uint16) Target {
	if ip, err := netip.ParseAddr(name); err == nil && ip.Zone() == "" {
		return Target{IP: ip.Unmap(), Port: port}
	}
	return Target{Host: name, Port: port}
}

// Request is what the server asks its Dialer for.
type Request struct {
	Target
	// Isolation is the stream-isolation key: streams with different keys
	// must never share a circuit.
	Isolation IsolationKey
	Protocol  Protocol
	// Optimistic lets the Dialer return before the destination has
	// accepted the stream: the server replies success at once and the
	// application's first bytes follow the stream's opening without a
	// round trip between them. A refusal then fails the connection's
	// reads and writes, and the server closes the application's
	// connection (08 §3.2).
	Optimistic bool
}

// IsolationKey identifies the credentials a stream arrived with, without
// holding them. The zero key means "no credentials".
//
// The key is SHA-256("obol socks isolation v1" || u32be(len(user)) || user
// || u32be(len(pass)) || pass), the same for SOCKS5 username/password,
// the SOCKS4 user id (with an empty password) and HTTP Basic proxy
// credentials; no credentials, or a SOCKS4 request with an empty user id,
// give the zero key.
type IsolationKey [32]byte

const isolationDomain = "obol socks isolation v1"

// NewIsolationKey derives the key for a username and password.
func NewIsolationKey(user, pass string) IsolationKey {
	h := sha256.New()
	h.Write([]byte(isolationDomain))
	var n [4]byte
	for _, s := range []string{user, pass} {
		binary.BigEndian.PutUint32(n[:], uint32(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	var k IsolationKey
	h.Sum(k[:0])
	return k
}

// IsZero reports whether the key is the no-credentials key.
func (k IsolationKey) IsZero() bool { return k == IsolationKey{} }
