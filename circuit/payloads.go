package circuit

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

// BeginFlags are the flags of a BEGIN cell.
type BeginFlags uint32

// BEGIN flags; all other bits MUST be zero.
const (
	BeginIPv6OK        BeginFlags = 1 << 0 // the client accepts an IPv6 destination
	BeginIPv4NotOK     BeginFlags = 1 << 1 // the client refuses an IPv4 destination
	BeginIPv6Preferred BeginFlags = 1 << 2 // prefer IPv6 when the name has both
	beginFlagsKnown               = BeginIPv6OK | BeginIPv4NotOK | BeginIPv6Preferred
)

// Begin opens a stream to Addr:Port at the exit.
//
//	addr type (1) | addr (hostname: len(1) + bytes; 4 or 16 bytes) | port (2) | flags (4)
type Begin struct {
	Addr  Address
	Port  uint16
	Flags BeginFlags
}

// MarshalBinary encodes a BEGIN body.
func (m Begin) MarshalBinary() ([]byte, error) {
	b, err := appendAddress(nil, m.Addr)
	if err == nil && m.Port == 0 {
		err = ErrBadPort
	}
	if err == nil && m.Flags&^beginFlagsKnown != 0 {
		err = ErrUnknownFlags
	}
	b = binary.BigEndian.AppendUint16(b, m.Port)
	b = binary.BigEndian.AppendUint32(b, uint32(m.Flags))
	return checkBody("begin", b, err)
}

// ParseBegin strictly decodes a BEGIN body.
func ParseBegin(b []byte) (Begin, error) {
	r := &reader{b: b}
	a, err := readAddress(r)
	m := Begin{Addr: a, Port: r.u16(), Flags: BeginFlags(r.u32())}
	switch {
	case err != nil:
	case r.done() != nil:
		err = r.err
	case m.Port == 0:
		err = ErrBadPort
	case m.Flags&^beginFlagsKnown != 0:
		err = ErrUnknownFlags
	}
	if err != nil {
		return Begin{}, fmt.Errorf("parse begin: %w", err)
	}
	return m, nil
}

// Connected answers a BEGIN. IP is the address the exit connected to (zero
// if the exit does not say), TTL how long the client may cache it.
//
//	addr type (1: 0 none, 4, 6) | addr (0, 4 or 16) | ttl (4)
type Connected struct {
	IP  netip.Addr
	TTL uint32
}

// MarshalBinary encodes a CONNECTED body.
func (m Connected) MarshalBinary() ([]byte, error) {
	if !m.IP.IsValid() {
		return binary.BigEndian.AppendUint32([]byte{0}, m.TTL), nil
	}
	b, err := appendAddress(nil, Address{IP: m.IP})
	return checkBody("connected", binary.BigEndian.AppendUint32(b, m.TTL), err)
}

// ParseConnected strictly decodes a CONNECTED body.
func ParseConnected(b []byte) (Connected, error) {
	var m Connected
	var err error
	r := &reader{b: b}
	if len(b) > 0 && b[0] == 0 {
		r.u8()
	} else {
		var a Address
		a, err = readAddress(r)
		if err == nil && a.Host != "" {
			err = ErrBadAddress
		}
		m.IP = a.IP
	}
	m.TTL = r.u32()
	if err == nil {
		err = r.done()
	}
	if err != nil {
		return Connected{}, fmt.Errorf("parse connected: %w", err)
	}
	return m, nil
}

// EndReason says why a stream ended.
type EndReason uint8

// END reasons. The client maps them to SOCKS replies.
const (
	EndMisc           EndReason = 1
	EndResolveFailed  EndReason = 2
	EndConnectRefused EndReason = 3
	EndExitPolicy     EndReason = 4
	EndDestroyed      EndReason = 5
	EndDone           EndReason = 6
	EndTimeout        EndReason = 7
	EndNoRoute        EndReason = 8
	EndHibernating    EndReason = 9
	EndInternal       EndReason = 10
	EndResourceLimit  EndReason = 11
	EndConnReset      EndReason = 12
	EndProtocol       EndReason = 13
	EndPayment        EndReason = 14
	endReasonMax                = EndPayment
)

var endNames = [...]string{"", "misc", "resolve-failed", "connect-refused",
	"exit-policy", "destroyed", "done", "timeout", "no-route", "hibernating",
	"internal", "resource-limit", "conn-reset", "protocol", "payment"}

func (r EndReason) String() string {
	if r >= 1 && r <= endReasonMax {
		return endNames[r]
	}
	return fmt.Sprintf("end(%d)", uint8(r))
}

// End closes a stream: reason (1).
type End struct{ Reason EndReason }

// MarshalBinary encodes an END body.
func (m End) MarshalBinary() ([]byte, error) {
	if m.Reason < 1 || m.Reason > endReasonMax {
		return nil, fmt.Errorf("marshal end: %v: %w", m.Reason, ErrUnknownEndReason)
	}
	return []byte{byte(m.Reason)}, nil
}

// ParseEnd strictly decodes an END body.
func ParseEnd(b []byte) (End, error) {
	r := &reader{b: b}
	m := End{Reason: EndReason(r.u8())}
	err := r.done()
	if err == nil && (m.Reason < 1 || m.Reason > endReasonMax) {
		err = ErrUnknownEndReason
	}
	if err != nil {
		return End{}, fmt.Errorf("parse end: %w", err)
	}
	return m, nil
}

// Resolve asks the exit to resolve a hostname: len (1) | hostname.
type Resolve struct{ Host string }

// MarshalBinary encodes a RESOLVE body.
func (m Resolve) MarshalBinary() ([]byte, error) {
	if err := checkHostname(m.Host); err != nil {
		return nil, fmt.Errorf("marshal resolve: %w", err)
	}
	return append([]byte{byte(len(m.Host))}, m.Host...), nil
}

// ParseResolve strictly decodes a RESOLVE body.
func ParseResolve(b []byte) (Resolve, error) {
	r := &reader{b: b}
	m := Resolve{Host: string(r.take(int(r.u8())))}
	err := r.done()
	if err == nil {
		err = checkHostname(m.Host)
	}
	if err != nil {
		return Resolve{}, fmt.Errorf("parse resolve: %w", err)
	}
	return m, nil
}

// ResolveStatus is the outcome of a RESOLVE.
type ResolveStatus uint8

// Resolve outcomes.
const (
	ResolveOK        ResolveStatus = 0
	ResolveTransient ResolveStatus = 1 // try again later
	ResolveFailed    ResolveStatus = 2 // name does not exist
)

// MaxResolvedAnswers bounds the answers of one RESOLVED cell.
const MaxResolvedAnswers = 32

// Answer is one resolved address and its TTL.
type Answer struct {
	IP  netip.Addr
	TTL uint32
}

// Resolved answers a RESOLVE:
//
//	status (1) | count (1) | count × (addr type (1) | addr (4/16) | ttl (4))
//
// A status other than ResolveOK carries no answers.
type Resolved struct {
	Status  ResolveStatus
	Answers []Answer
}

// MarshalBinary encodes a RESOLVED body.
func (m Resolved) MarshalBinary() ([]byte, error) {
	err := m.check()
	b := []byte{byte(m.Status), byte(len(m.Answers))}
	for _, a := range m.Answers {
		if err != nil {
			break
		}
		b, err = appendAddress(b, Address{IP: a.IP})
		b = binary.BigEndian.AppendUint32(b, a.TTL)
	}
	return checkBody("resolved", b, err)
}

func (m Resolved) check() error {
	switch {
	case m.Status > ResolveFailed:
		return ErrBadAddress
	case m.Status != ResolveOK && len(m.Answers) != 0:
		return ErrPayloadTrailing
	case len(m.Answers) > MaxResolvedAnswers:
		return ErrPayloadTooLong
	}
	return nil
}

// ParseResolved strictly decodes a RESOLVED body.
func ParseResolved(b []byte) (Resolved, error) {
	r := &reader{b: b}
	m := Resolved{Status: ResolveStatus(r.u8())}
	n := int(r.u8())
	err := r.err
	for i := 0; i < n && err == nil; i++ {
		var a Address
		if a, err = readAddress(r); err == nil && a.Host != "" {
			err = ErrBadAddress
		}
		m.Answers = append(m.Answers, Answer{IP: a.IP, TTL: r.u32()})
	}
	if err == nil {
		err = r.done()
	}
	if err == nil {
		err = m.check()
	}
	if err != nil {
		return Resolved{}, fmt.Errorf("parse resolved: %w", err)
	}
	return m, nil
}

// SendmeVersion1 is the only SENDME version.
const SendmeVersion1 = 1

// Sendme acknowledges delivered cells (stream ID 0: circuit level; else
// stream level). Tag echoes the relay-cell tag of the cell that triggered
// it, so a SENDME proves the cells were read (authenticated SENDME).
//
//	version (1) | tag (16)
type Sendme struct {
	Tag [TagLen]byte
}

// MarshalBinary encodes a SENDME body.
func (m Sendme) MarshalBinary() ([]byte, error) {
	return append([]byte{SendmeVersion1}, m.Tag[:]...), nil
}

// ParseSendme strictly decodes a SENDME body.
func ParseSendme(b []byte) (Sendme, error) {
	r := &reader{b: b}
	v := r.u8()
	t := r.take(TagLen)
	err := r.done()
	if err == nil && v != SendmeVersion1 {
		err = ErrSendmeVersion
	}
	if err != nil {
		return Sendme{}, fmt.Errorf("parse sendme: %w", err)
	}
	return Sendme{Tag: [TagLen]byte(t)}, nil
}
