package circuit

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

// reader is a strict cursor over a relay payload: every read checks the
// remaining length, and done() rejects trailing bytes.
type reader struct {
	b   []byte
	err error
}

func (r *reader) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if len(r.b) < n {
		r.err = ErrPayloadTruncated
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) u8() uint8 {
	if v := r.take(1); v != nil {
		return v[0]
	}
	return 0
}

func (r *reader) u16() uint16 {
	if v := r.take(2); v != nil {
		return binary.BigEndian.Uint16(v)
	}
	return 0
}

func (r *reader) u32() uint32 {
	if v := r.take(4); v != nil {
		return binary.BigEndian.Uint32(v)
	}
	return 0
}

func (r *reader) done() error {
	if r.err == nil && len(r.b) != 0 {
		r.err = ErrPayloadTrailing
	}
	return r.err
}

// Address types on the wire.
const (
	addrHostname uint8 = 0x01
	addrIPv4     uint8 = 0x04
	addrIPv6     uint8 = 0x06
)

// MaxHostnameLen is the longest hostname a relay cell carries.
const MaxHostnameLen = 255

// Address is a stream destination: exactly one of Host (a DNS name resolved
// by the exit, never by the client) and IP is set.
type Address struct {
	Host string
	IP   netip.Addr
}

// checkHostname accepts 1–255 bytes of letters, digits, '-', '_' and '.'.
func checkHostname(h string) error {
	if len(h) == 0 || len(h) > MaxHostnameLen {
		return ErrBadHostname
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '-' || c == '_' || c == '.'
		if !ok {
			return ErrBadHostname
		}
	}
	return nil
}

// appendAddress writes type, then the address (hostnames length-prefixed).
func appendAddress(dst []byte, a Address) ([]byte, error) {
	switch {
	case a.Host != "" && a.IP.IsValid():
		return dst, ErrBadAddress
	case a.Host != "":
		if err := checkHostname(a.Host); err != nil {
			return dst, err
		}
		dst = append(dst, addrHostname, byte(len(a.Host)))
		return append(dst, a.Host...), nil
	case a.IP.Is4():
		b := a.IP.As4()
		return append(append(dst, addrIPv4), b[:]...), nil
	case a.IP.Is6() && !a.IP.Is4In6() && a.IP.Zone() == "":
		b := a.IP.As16()
		return append(append(dst, addrIPv6), b[:]...), nil
	}
	return dst, ErrBadAddress
}

// readAddress is the inverse of appendAddress.
func readAddress(r *reader) (Address, error) {
	switch t := r.u8(); {
	case r.err != nil:
		return Address{}, r.err
	case t == addrHostname:
		h := string(r.take(int(r.u8())))
		if r.err != nil {
			return Address{}, r.err
		}
		return Address{Host: h}, checkHostname(h)
	case t == addrIPv4:
		b := r.take(4)
		if r.err != nil {
			return Address{}, r.err
		}
		return Address{IP: netip.AddrFrom4([4]byte(b))}, nil
	case t == addrIPv6:
		b := r.take(16)
		if r.err != nil {
			return Address{}, r.err
		}
		ip := netip.AddrFrom16([16]byte(b))
		if ip.Is4In6() {
			return Address{}, ErrBadAddress
		}
		return Address{IP: ip}, nil
	}
	return Address{}, ErrBadAddress
}

// checkBody wraps a payload error and rejects bodies that cannot fit a cell.
func checkBody(what string, b []byte, err error) ([]byte, error) {
	if err != nil {
		return nil, fmt.Errorf("marshal %s: %w", what, err)
	}
	if len(b) > MaxRelayBody {
		return nil, fmt.Errorf("marshal %s: %d bytes: %w", what, len(b), ErrPayloadTooLong)
	}
	return b, nil
}
