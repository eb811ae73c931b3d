package socks

import (
	"encoding/binary"
	"fmt"
	"io"
	"net/netip"
)

// SOCKS5 wire constants (RFC 1928, RFC 1929).
const (
	version5 = 0x05

	MethodNoAuth       byte = 0x00
	MethodUserPass     byte = 0x02
	MethodNoAcceptable byte = 0xff

	userPassVersion = 0x01

	CmdConnect      byte = 0x01
	CmdBind         byte = 0x02
	CmdUDPAssociate byte = 0x03

	AtypIPv4   byte = 0x01
	AtypDomain byte = 0x03
	AtypIPv6   byte = 0x04
)

// ReadGreeting reads a SOCKS5 method-selection message and returns the
// offered methods.
//
//	+-----+----------+----------+
//	| VER | NMETHODS | METHODS  |
//	+-----+----------+----------+
//	|  5  |    1     | 1 to 255 |
//	+-----+----------+----------+
func ReadGreeting(r io.Reader) ([]byte, error) {
	var hdr [2]byte
	if err := readFull(r, hdr[:]); err != nil {
		return nil, err
	}
	if hdr[0] != version5 {
		return nil, fmt.Errorf("%w: version %d in greeting", ErrMalformed, hdr[0])
	}
	if hdr[1] == 0 {
		return nil, fmt.Errorf("%w: no methods offered", ErrMalformed)
	}
	methods := make([]byte, hdr[1])
	if err := readRest(r, methods); err != nil {
		return nil, err
	}
	return methods, nil
}

// ChooseMethod picks username/password when offered (its credentials are
// the isolation key), else no authentication, else MethodNoAcceptable.
func ChooseMethod(methods []byte) byte {
	var noAuth bool
	for _, m := range methods {
		if m == MethodUserPass {
			return MethodUserPass
		}
		noAuth = noAuth || m == MethodNoAuth
	}
	if noAuth {
		return MethodNoAuth
	}
	return MethodNoAcceptable
}

// ReadUserPass reads an RFC 1929 username/password request. Empty fields
// are accepted.
//
//	+-----+------+----------+------+----------+
//	| VER | ULEN |  UNAME   | PLEN |  PASSWD  |
//	+-----+------+----------+------+----------+
//	|  1  |  1   | 0 to 255 |  1   | 0 to 255 |
//	+-----+------+----------+------+----------+
func ReadUserPass(r io.Reader) (user, pass string, err error) {
	var ver [1]byte
	if err := readFull(r, ver[:]); err != nil {
		return "", "", err
	}
	if ver[0] != userPassVersion {
		return "", "", fmt.Errorf("%w: username/password version %d", ErrMalformed, ver[0])
	}
	if user, err = readLenString(r); err != nil {
		return "", "", err
	}
	if pass, err = readLenString(r); err != nil {
		return "", "", err
	}
	return user, pass, nil
}

// Request5 is a parsed SOCKS5 request.
type Request5 struct {
	Cmd    byte
	Target Target
}

// ReadRequest5 reads a SOCKS5 request. An unknown address type yields
// ErrAddrTypeNotSupported (the rest of the request cannot be delimited);
// the command is returned as sent, for the caller to refuse.
//
//	+-----+-----+-------+------+----------+----------+
//	| VER | CMD |  RSV  | ATYP | DST.ADDR | DST.PORT |
//	+-----+-----+-------+------+----------+----------+
//	|  5  |  1  | X'00' |  1   | Variable |    2     |
//	+-----+-----+-------+------+----------+----------+
//
// DST.ADDR is 4 bytes (ATYP 1), 16 bytes (ATYP 4) or a length byte and
// 1 to 255 bytes of name (ATYP 3).
func ReadRequest5(r io.Reader) (Request5, error) {
	var hdr [4]byte
	if err := readFull(r, hdr[:]); err != nil {
		return Request5{}, err
	}
	if hdr[0] != version5 {
		return Request5{}, fmt.Errorf("%w: version %d in request", ErrMalformed, hdr[0])
	}
	name, ip, err := readAddr5(r, hdr[3])
	if err != nil {
		return Request5{}, err
	}
	var port [2]byte
	if err := readRest(r, port[:]); err != nil {
		return Request5{}, err
	}
	p := binary.BigEndian.Uint16(port[:])
	req := Request5{Cmd: hdr[1], Target: Target{IP: ip, Port: p}}
	if name != "" {
		req.Target = targetFromName(name, p)
	}
	return req, nil
}

func readAddr5(r io.Reader, atyp byte) (string, netip.Addr, error) {
	switch atyp {
	case AtypIPv4:
		var b [4]byte
		err := readRest(r, b[:])
		return "", netip.AddrFrom4(b), err
	case AtypIPv6:
		var b [16]byte
		err := readRest(r, b[:])
		return "", netip.AddrFrom16(b).Unmap(), err
	case AtypDomain:
		name, err := readLenString(r)
		if err == nil {
			err = checkHostname(name)
		}
		return name, netip.Addr{}, err
	}
	return "", netip.Addr{}, fmt.Errorf("%w: address type %d", ErrAddrTypeNotSupported, atyp)
}

// checkHostname refuses names that no exit could resolve and that could
// confuse a log or a later parser: empty names and control, space and
// non-ASCII bytes.
func checkHostname(name string) error {
	if name == "" {
		return fmt.Errorf("%w: empty host name", ErrMalformed)
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c <= ' ' || c >= 0x7f {
			return fmt.Errorf("%w: invalid byte in host name", ErrMalformed)
		}
	}
	return nil
}

// AppendReply5 appends a SOCKS5 reply. The bound address is always
// 0.0.0.0:0: the stream has no local address worth telling.
func AppendReply5(b []byte, rep byte) []byte {
	return append(b, version5, rep, 0x00, AtypIPv4, 0, 0, 0, 0, 0, 0)
}

func readLenString(r io.Reader) (string, error) {
	var n [1]byte
	if err := readRest(r, n[:]); err != nil {
		return "", err
	}
	b := make([]byte, n[0])
	if err := readRest(r, b); err != nil {
		return "", err
	}
	return string(b), nil
}

// readRest reads len(b) bytes from the middle of a message, where any
// end of input is a truncation (ErrMalformed).
func readRest(r io.Reader, b []byte) error {
	if err := readFull(r, b); err != io.EOF {
		return err
	}
	return fmt.Errorf("%w: truncated: %w", ErrMalformed, io.ErrUnexpectedEOF)
}

// readFull reads len(b) bytes at the start of a message; a short read is
// ErrMalformed (truncated), a clean EOF before the first byte is io.EOF.
func readFull(r io.Reader, b []byte) error {
	_, err := io.ReadFull(r, b)
	switch err {
	case nil, io.EOF:
		return err
	case io.ErrUnexpectedEOF:
		return fmt.Errorf("%w: truncated: %w", ErrMalformed, err)
	}
	return fmt.Errorf("socks: read: %w", err)
}
