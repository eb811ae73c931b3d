package socks

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"net/netip"
)

// Client-side encoders, used by the tests and the fuzz round trips.

func encodeGreeting(methods ...byte) []byte {
	return append([]byte{version5, byte(len(methods))}, methods...)
}

func encodeUserPass(user, pass string) []byte {
	b := []byte{userPassVersion, byte(len(user))}
	b = append(b, user...)
	b = append(b, byte(len(pass)))
	return append(b, pass...)
}

func encodeRequest5(cmd byte, t Target) []byte {
	b := []byte{version5, cmd, 0}
	switch {
	case t.IP.Is4():
		b = append(b, AtypIPv4)
		b = append(b, t.IP.AsSlice()...)
	case t.IP.Is6():
		b = append(b, AtypIPv6)
		b = append(b, t.IP.AsSlice()...)
	default:
		b = append(b, AtypDomain, byte(len(t.Host)))
		b = append(b, t.Host...)
	}
	return binary.BigEndian.AppendUint16(b, t.Port)
}

func encodeRequest4(cmd byte, t Target, user string) []byte {
	b := []byte{version4, cmd}
	b = binary.BigEndian.AppendUint16(b, t.Port)
	if t.IP.IsValid() {
		b = append(b, t.IP.AsSlice()...)
	} else {
		b = append(b, 0, 0, 0, 1)
	}
	b = append(append(b, user...), 0)
	if !t.IP.IsValid() {
		b = append(append(b, t.Host...), 0)
	}
	return b
}

func encodeHTTPConnect(t Target, user, pass string, auth bool) []byte {
	s := fmt.Sprintf("CONNECT %s HTTP/1.1\r\nHost: %s\r\n", t, t)
	if auth {
		s += "Proxy-Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass)) + "\r\n"
	}
	return []byte(s + "\r\n")
}

func br(b []byte) *bufio.Reader { return bufio.NewReaderSize(bytes.NewReader(b), 4096) }

func tgtIP(s string, port uint16) Target   { return Target{IP: netip.MustParseAddr(s), Port: port} }
func tgtHost(s string, port uint16) Target { return Target{Host: s, Port: port} }
