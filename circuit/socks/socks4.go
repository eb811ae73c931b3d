package socks

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net/netip"
)

const version4 = 0x04

// maxField4 bounds the NUL-terminated user id and SOCKS4a host name.
const maxField4 = 255

// Request4 is a parsed SOCKS4 or SOCKS4a request.
type Request4 struct {
	Cmd    byte
	Target Target
	UserID string
	Is4a   bool
}

// ReadRequest4 reads a SOCKS4 or SOCKS4a request.
//
//	+----+----+----+----+----+----+----+----+----+----+....+----+
//	| VN | CD | DSTPORT |      DSTIP        | USERID       |NULL|
//	+----+----+----+----+----+----+----+----+----+----+....+----+
//	   1    1      2              4           variable       1
//
// SOCKS4a: a DSTIP of 0.0.0.x with x != 0 means a host name follows the
// user id, also NUL-terminated. Each field is at most 255 bytes.
func ReadRequest4(r *bufio.Reader) (Request4, error) {
	var hdr [8]byte
	if err := readFull(r, hdr[:]); err != nil {
		return Request4{}, err
	}
	if hdr[0] != version4 {
		return Request4{}, fmt.Errorf("%w: version %d", ErrMalformed, hdr[0])
	}
	req := Request4{Cmd: hdr[1]}
	port := binary.BigEndian.Uint16(hdr[2:4])
	ip := netip.AddrFrom4([4]byte(hdr[4:8]))
	var err error
	if req.UserID, err = readCString(r); err != nil {
		return Request4{}, err
	}
	req.Target = Target{IP: ip, Port: port}
	if b := ip.As4(); b[0] == 0 && b[1] == 0 && b[2] == 0 && b[3] != 0 {
		req.Is4a = true
		name, err := readCString(r)
		if err == nil {
			err = checkHostname(name)
		}
		if err != nil {
			return Request4{}, err
		}
		req.Target = targetFromName(name, port)
	}
	return req, nil
}

// readCString reads a NUL-terminated field of at most maxField4 bytes.
func readCString(r io.ByteReader) (string, error) {
	var b []byte
	for {
		c, err := r.ReadByte()
		if err != nil {
			return "", fmt.Errorf("%w: truncated: %w", ErrMalformed, err)
		}
		if c == 0 {
			return string(b), nil
		}
		if len(b) == maxField4 {
			return "", fmt.Errorf("%w: field longer than %d bytes", ErrMalformed, maxField4)
		}
		b = append(b, c)
	}
}

// AppendReply4 appends a SOCKS4 reply: VN=0, the code, and a zero port
// and address.
func AppendReply4(b []byte, rep byte) []byte {
	return append(b, 0x00, rep, 0, 0, 0, 0, 0, 0)
}
