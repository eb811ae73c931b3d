package circuit

import (
	"bytes"
	"encoding"
	"errors"
	"net/netip"
	"strings"
	"testing"
)

// roundTrip marshals m, parses it back with parse and re-marshals.
func roundTrip[T encoding.BinaryMarshaler](t *testing.T, m T, parse func([]byte) (T, error)) {
	t.Helper()
	b, err := m.MarshalBinary()
	if err != nil {
		t.Fatalf("marshal %+v: %v", m, err)
	}
	got, err := parse(b)
	if err != nil {
		t.Fatalf("parse %x: %v", b, err)
	}
	b2, err := got.MarshalBinary()
	if err != nil || !bytes.Equal(b, b2) {
		t.Fatalf("round trip %+v → %+v", m, got)
	}
}

func TestBegin(t *testing.T) {
	for _, m := range []Begin{
		{Addr: Address{Host: "example.com"}, Port: 443},
		{Addr: Address{Host: strings.Repeat("a", 255)}, Port: 1, Flags: BeginIPv6OK | BeginIPv6Preferred},
		{Addr: Address{IP: netip.MustParseAddr("192.0.2.1")}, Port: 80},
		{Addr: Address{IP: netip.MustParseAddr("2001:db8::1")}, Port: 22, Flags: BeginIPv4NotOK},
	} {
		roundTrip(t, m, ParseBegin)
	}
	for _, tc := range []struct {
		name string
		m    Begin
		err  error
	}{
		{"no address", Begin{Port: 1}, ErrBadAddress},
		{"both", Begin{Addr: Address{Host: "a", IP: netip.MustParseAddr("192.0.2.1")}, Port: 1}, ErrBadAddress},
		{"port 0", Begin{Addr: Address{Host: "a"}}, ErrBadPort},
		{"flags", Begin{Addr: Address{Host: "a"}, Port: 1, Flags: 1 << 9}, ErrUnknownFlags},
		{"bad host", Begin{Addr: Address{Host: "a b"}, Port: 1}, ErrBadHostname},
		{"long host", Begin{Addr: Address{Host: strings.Repeat("a", 256)}, Port: 1}, ErrBadHostname},
		{"4in6", Begin{Addr: Address{IP: netip.MustParseAddr("::ffff:1.2.3.4")}, Port: 1}, ErrBadAddress},
	} {
		if _, err := tc.m.MarshalBinary(); !errors.Is(err, tc.err) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.err)
		}
	}
	good, _ := Begin{Addr: Address{Host: "ab"}, Port: 1}.MarshalBinary()
	for _, tc := range []struct {
		name string
		in   []byte
		err  error
	}{
		{"truncated", good[:len(good)-1], ErrPayloadTruncated},
		{"trailing", append(append([]byte(nil), good...), 0), ErrPayloadTrailing},
		{"empty", nil, ErrPayloadTruncated},
		{"addr type", []byte{9, 0, 1, 0, 0, 0, 0}, ErrBadAddress},
		{"empty host", []byte{1, 0, 0, 1, 0, 0, 0, 0}, ErrBadHostname},
		{"nul in host", []byte{1, 1, 0, 0, 1, 0, 0, 0, 0}, ErrBadHostname},
		{"4in6", append([]byte{6, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 1, 2, 3, 4}, 0, 1, 0, 0, 0, 0), ErrBadAddress},
	} {
		if _, err := ParseBegin(tc.in); !errors.Is(err, tc.err) {
			t.Errorf("parse %s: %v, want %v", tc.name, err, tc.err)
		}
	}
}

func TestConnected(t *testing.T) {
	for _, m := range []Connected{
		{}, {TTL: 60},
		{IP: netip.MustParseAddr("198.51.100.7"), TTL: 300},
		{IP: netip.MustParseAddr("2001:db8::7")},
	} {
		roundTrip(t, m, ParseConnected)
	}
	for _, in := range [][]byte{nil, {0, 0, 0}, {1, 1, 'a', 0, 0, 0, 0}, {4, 1, 2, 3, 4, 0, 0, 0, 0, 0}} {
		if _, err := ParseConnected(in); err == nil {
			t.Errorf("parse %x: accepted", in)
		}
	}
}

func TestEnd(t *testing.T) {
	for r := EndMisc; r <= endReasonMax; r++ {
		roundTrip(t, End{Reason: r}, ParseEnd)
	}
	for _, tc := range []struct {
		in  []byte
		err error
	}{{nil, ErrPayloadTruncated}, {[]byte{0}, ErrUnknownEndReason}, {[]byte{99}, ErrUnknownEndReason}, {[]byte{1, 0}, ErrPayloadTrailing}} {
		if _, err := ParseEnd(tc.in); !errors.Is(err, tc.err) {
			t.Errorf("parse %x: %v, want %v", tc.in, err, tc.err)
		}
	}
	if _, err := (End{}).MarshalBinary(); !errors.Is(err, ErrUnknownEndReason) {
		t.Errorf("marshal reason 0: %v", err)
	}
}

func TestResolve(t *testing.T) {
	roundTrip(t, Resolve{Host: "www.example.org"}, ParseResolve)
	if _, err := (Resolve{}).MarshalBinary(); !errors.Is(err, ErrBadHostname) {
		t.Errorf("empty: %v", err)
	}
	if _, err := ParseResolve([]byte{3, 'a', 'b'}); !errors.Is(err, ErrPayloadTruncated) {
		t.Errorf("truncated: %v", err)
	}
}

func TestResolved(t *testing.T) {
	for _, m := range []Resolved{
		{Status: ResolveFailed},
		{Status: ResolveTransient},
		{Answers: []Answer{{IP: netip.MustParseAddr("192.0.2.9"), TTL: 5}, {IP: netip.MustParseAddr("2001:db8::9"), TTL: 6}}},
	} {
		roundTrip(t, m, ParseResolved)
	}
	for _, tc := range []struct {
		name string
		m    Resolved
		err  error
	}{
		{"error with answers", Resolved{Status: ResolveFailed, Answers: []Answer{{IP: netip.MustParseAddr("192.0.2.1")}}}, ErrPayloadTrailing},
		{"too many", Resolved{Answers: make([]Answer, MaxResolvedAnswers+1)}, ErrPayloadTooLong},
		{"invalid ip", Resolved{Answers: []Answer{{}}}, ErrBadAddress},
	} {
		if _, err := tc.m.MarshalBinary(); !errors.Is(err, tc.err) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.err)
		}
	}
	if _, err := ParseResolved([]byte{0, 2, 4, 1, 2, 3, 4, 0, 0, 0, 1}); !errors.Is(err, ErrPayloadTruncated) {
		t.Errorf("count too high: %v", err)
	}
}

func TestSendme(t *testing.T) {
	roundTrip(t, Sendme{Tag: [TagLen]byte{1, 2, 3}}, ParseSendme)
	if _, err := ParseSendme(append([]byte{2}, make([]byte, TagLen)...)); !errors.Is(err, ErrSendmeVersion) {
		t.Errorf("version: %v", err)
	}
	if _, err := ParseSendme([]byte{1}); !errors.Is(err, ErrPayloadTruncated) {
		t.Errorf("truncated: %v", err)
	}
}

func TestExtendCodec(t *testing.T) {
	create := createPayload(make([]byte, OnionLen))[:CreateLen]
	roundTrip(t, Extend{Next: peerID(1), Create: create}, ParseExtend)
	roundTrip(t, Extend{Next: make([]byte, MaxPeerIDLen), Create: create}, ParseExtend)
	if _, err := (Extend{Create: create}).MarshalBinary(); !errors.Is(err, ErrBadPeerID) {
		t.Errorf("no peer: %v", err)
	}
	bad := append([]byte(nil), create...)
	bad[1] = 9
	b := append([]byte{1, 'p'}, bad...)
	if _, err := ParseExtend(b); !errors.Is(err, ErrBadHandshakeType) {
		t.Errorf("handshake type: %v", err)
	}
	created := createdPayload(make([]byte, ReplyLen))[:CreatedLen]
	roundTrip(t, Extended{Created: created}, ParseExtended)
	if _, err := ParseExtended(created[:10]); !errors.Is(err, ErrPayloadTruncated) {
		t.Errorf("short extended: %v", err)
	}
}

func TestRouting(t *testing.T) {
	r := routing{kind: routeForward, next: peerID(3), minute: 0x01020304, seed: [seedLen]byte{7}}
	got, err := parseRouting(r.marshal())
	if err != nil || !bytes.Equal(got.next, r.next) || got.minute != r.minute || got.seed != r.seed {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	if b := r.marshal(); !bytes.Equal(b[2+MaxPeerIDLen:2+MaxPeerIDLen+4], []byte{1, 2, 3, 4}) {
		t.Fatalf("minute at the wrong offset: %x", b)
	}
	for _, tc := range []struct {
		name string
		r    routing
		err  error
	}{
		{"forward without peer", routing{kind: routeForward}, ErrBadPeerID},
		{"last with peer", routing{kind: routeLast, next: []byte{1}}, ErrBadPeerID},
		{"kind", routing{kind: 9}, ErrRoutingKind},
		{"peer ID over the limit", routing{kind: routeForward, next: make([]byte, MaxPeerIDLen+1)}, ErrBadPeerID},
	} {
		if _, err := parseRouting(tc.r.marshal()); !errors.Is(err, tc.err) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.err)
		}
	}
}
