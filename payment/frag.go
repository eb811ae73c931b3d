package payment

import (
	"encoding/binary"
	"fmt"
)

// A payment message travels in one or more relay cells addressed to one
// hop. Each cell body is a fragment:
//
//	 0       2       4
//	+-------+-------+--------------------
//	| total | offset| data (1..n bytes)
//	+-------+-------+--------------------
//
// total is the whole message's length (1..MaxMessageSize), offset where
// data starts in it, both big-endian. Fragments of one message are sent
// in order, back to back, and are never interleaved with another message
// on the same circuit and hop (a circuit delivers its cells in order).

// Fragment sizes.
const (
	FragHeaderSize = 4
	// MaxMessageSize bounds a reassembled payment message.
	MaxMessageSize = 8192
)

// Fragment splits msg into cell bodies of at most maxBody bytes each.
func Fragment(msg []byte, maxBody int) ([][]byte, error) {
	room := maxBody - FragHeaderSize
	if len(msg) == 0 || len(msg) > MaxMessageSize || room <= 0 {
		return nil, fmt.Errorf("%w: %d-byte message in %d-byte bodies", ErrTooLarge, len(msg), maxBody)
	}
	frags := make([][]byte, 0, (len(msg)+room-1)/room)
	for off := 0; off < len(msg); off += room {
		data := msg[off:min(off+room, len(msg))]
		f := make([]byte, FragHeaderSize, FragHeaderSize+len(data))
		binary.BigEndian.PutUint16(f[0:], uint16(len(msg)))
		binary.BigEndian.PutUint16(f[2:], uint16(off))
		frags = append(frags, append(f, data...))
	}
	return frags, nil
}

// Reassembler puts one hop's fragments back together. The zero value is
// ready; it is not safe for concurrent use.
//
//	         offset 0, total = len       last fragment
//	(idle) ───────────────────────► (partial) ─────────► message, idle
//	   ▲ offset 0, total = len(data)           │ next fragment at offset = have
//	   └── message ◄──────                     └──┘
//
// Any other fragment is an error (ErrMalformed) and resets it.
type Reassembler struct {
	buf []byte // the message so far; cap is its total
}

// Add takes one fragment. It returns the whole message when f completes
// one, nil when more fragments are due.
func (r *Reassembler) Add(f []byte) ([]byte, error) {
	total, off, data, err := parseFragment(f)
	if err != nil {
		r.buf = nil
		return nil, err
	}
	switch {
	case off == 0 && r.buf != nil:
		r.buf = nil
		return nil, fmt.Errorf("%w: new message before the last was complete", ErrMalformed)
	case off == 0:
		r.buf = make([]byte, 0, total)
	case r.buf == nil || off != len(r.buf) || total != cap(r.buf):
		r.buf = nil
		return nil, fmt.Errorf("%w: fragment out of sequence", ErrMalformed)
	}
	if len(data) > cap(r.buf)-len(r.buf) {
		r.buf = nil
		return nil, fmt.Errorf("%w: fragment past the message's end", ErrMalformed)
	}
	r.buf = append(r.buf, data...)
	if len(r.buf) < cap(r.buf) {
		return nil, nil
	}
	msg := r.buf
	r.buf = nil
	return msg, nil
}

// Pending reports whether a message is partly assembled.
func (r *Reassembler) Pending() bool { return r.buf != nil }

func parseFragment(f []byte) (total, off int, data []byte, err error) {
	if len(f) <= FragHeaderSize {
		return 0, 0, nil, ErrTruncated
	}
	total = int(binary.BigEndian.Uint16(f[0:]))
	off = int(binary.BigEndian.Uint16(f[2:]))
	if total == 0 || total > MaxMessageSize {
		return 0, 0, nil, ErrTooLarge
	}
	return total, off, f[FragHeaderSize:], nil
}
