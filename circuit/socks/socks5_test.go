package socks

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestReadGreeting(t *testing.T) {
	tests := []struct {
		in      []byte
		want    []byte
		wantErr error
	}{
		{encodeGreeting(0), []byte{0}, nil},
		{encodeGreeting(0, 2), []byte{0, 2}, nil},
		{[]byte{5, 0}, nil, ErrMalformed},
		{[]byte{4, 1, 0}, nil, ErrMalformed},
		{[]byte{5, 2, 0}, nil, ErrMalformed},
		{[]byte{5}, nil, ErrMalformed},
		{nil, nil, io.EOF},
	}
	for _, tt := range tests {
		got, err := ReadGreeting(bytes.NewReader(tt.in))
		if !errors.Is(err, tt.wantErr) || !bytes.Equal(got, tt.want) {
			t.Errorf("ReadGreeting(%x) = %x, %v; want %x, %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestChooseMethod(t *testing.T) {
	for _, tt := range []struct {
		in   []byte
		want byte
	}{
		{[]byte{0}, MethodNoAuth},
		{[]byte{0, 2}, MethodUserPass},
		{[]byte{2}, MethodUserPass},
		{[]byte{1}, MethodNoAcceptable},
		{[]byte{1, 3, 0x80}, MethodNoAcceptable},
	} {
		if got := ChooseMethod(tt.in); got != tt.want {
			t.Errorf("ChooseMethod(%x) = %x, want %x", tt.in, got, tt.want)
		}
	}
}

func TestReadUserPass(t *testing.T) {
	long := strings.Repeat("u", 255)
	tests := []struct {
		in         []byte
		user, pass string
		wantErr    error
	}{
		{encodeUserPass("alice", "secret"), "alice", "secret", nil},
		{encodeUserPass("", ""), "", "", nil},
		{encodeUserPass(long, long), long, long, nil},
		{[]byte{2, 1, 'a', 0}, "", "", ErrMalformed},
		{[]byte{1, 5, 'a'}, "", "", ErrMalformed},
		{[]byte{1, 1, 'a'}, "", "", ErrMalformed},
		{[]byte{1, 1, 'a', 3, 'x'}, "", "", ErrMalformed},
	}
	for _, tt := range tests {
		u, p, err := ReadUserPass(bytes.NewReader(tt.in))
		if !errors.Is(err, tt.wantErr) || u != tt.user || p != tt.pass {
			t.Errorf("ReadUserPass(%x) = %q, %q, %v", tt.in, u, p, err)
		}
	}
}

func TestReadRequest5(t *testing.T) {
	tests := []struct {
		name    string
		in      []byte
		want    Request5
		wantErr error
	}{
		{"ipv4", encodeRequest5(CmdConnect, tgtIP("93.184.216.34", 80)), Request5{CmdConnect, tgtIP("93.184.216.34", 80)}, nil},
		{"ipv6", encodeRequest5(CmdConnect, tgtIP("2001:db8::1", 443)), Request5{CmdConnect, tgtIP("2001:db8::1", 443)}, nil},
		{"mapped ipv6", append([]byte{5, 1, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 1}, 0, 80), Request5{CmdConnect, tgtIP("10.0.0.1", 80)}, nil},
		{"domain", encodeRequest5(CmdConnect, tgtHost("example.com", 443)), Request5{CmdConnect, tgtHost("example.com", 443)}, nil},
		{"domain literal", encodeRequest5(CmdConnect, tgtHost("127.0.0.1", 8080)), Request5{CmdConnect, tgtIP("127.0.0.1", 8080)}, nil},
		{"domain v6 literal", encodeRequest5(CmdConnect, tgtHost("::1", 22)), Request5{CmdConnect, tgtIP("::1", 22)}, nil},
		{"bind kept for caller", encodeRequest5(CmdBind, tgtIP("1.2.3.4", 1)), Request5{CmdBind, tgtIP("1.2.3.4", 1)}, nil},
		{"empty domain", []byte{5, 1, 0, 3, 0, 0, 80}, Request5{}, ErrMalformed},
		{"domain with space", encodeRequest5(CmdConnect, tgtHost("a b", 80)), Request5{}, ErrMalformed},
		{"domain with nul", encodeRequest5(CmdConnect, tgtHost("a\x00b", 80)), Request5{}, ErrMalformed},
		{"bad atyp", []byte{5, 1, 0, 9, 1, 2, 3, 4, 0, 80}, Request5{}, ErrAddrTypeNotSupported},
		{"bad version", []byte{4, 1, 0, 1, 1, 2, 3, 4, 0, 80}, Request5{}, ErrMalformed},
		{"truncated addr", []byte{5, 1, 0, 1, 1, 2}, Request5{}, ErrMalformed},
		{"truncated port", []byte{5, 1, 0, 1, 1, 2, 3, 4, 0}, Request5{}, ErrMalformed},
		{"truncated domain", []byte{5, 1, 0, 3, 10, 'a'}, Request5{}, ErrMalformed},
		{"empty", nil, Request5{}, io.EOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ReadRequest5(bytes.NewReader(tt.in))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestReplyCode5(t *testing.T) {
	tests := []struct {
		err  error
		want byte
	}{
		{nil, Rep5Succeeded},
		{errors.New("boom"), Rep5GeneralFailure},
		{ErrMalformed, Rep5GeneralFailure},
		{ErrNotAllowed, Rep5NotAllowed},
		{ErrNetUnreachable, Rep5NetUnreachable},
		{ErrHostUnreachable, Rep5HostUnreachable},
		{ErrConnRefused, Rep5ConnRefused},
		{ErrTTLExpired, Rep5TTLExpired},
		{ErrCommandNotSupported, Rep5CmdNotSupported},
		{ErrAddrTypeNotSupported, Rep5AddrTypeNotSupported},
	}
	for _, tt := range tests {
		if got := ReplyCode5(tt.err); got != tt.want {
			t.Errorf("ReplyCode5(%v) = %#x, want %#x", tt.err, got, tt.want)
		}
		wrapped := errors.Join(errors.New("context"), tt.err)
		if tt.err != nil && ReplyCode5(wrapped) != tt.want {
			t.Errorf("ReplyCode5(wrapped %v) = %#x, want %#x", tt.err, ReplyCode5(wrapped), tt.want)
		}
	}
}
