package view

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/obolnet/obol/descriptor"
)

// Protocol is the stream protocol on which relays serve their view. One
// stream carries one request, closed for writing after it, and one
// response, closed after it.
const Protocol = "/obol/view/1"

// Limits of the wire format (specs/02-dht.md, "The view"). A message past
// any of them is malformed.
const (
	MaxFetch         = 64   // peer IDs in one FETCH, records in its answer
	MaxDigestEntries = 2048 // entries in one DIGEST answer
	MaxIDLen         = 64   // bytes of one peer ID

	digestRequestSize = 1 + 8 + 8
	maxFetchRequest   = 1 + 1 + MaxFetch*(1+MaxIDLen)
	maxRequestSize    = maxFetchRequest
	maxDigestSize     = 1 + 8 + 8 + 1 + 2 + MaxDigestEntries*(1+MaxIDLen+8)
	maxRecordsSize    = 1 + 1 + MaxFetch*(2+descriptor.MaxSize)
)

// Message types.
const (
	typeDigestRequest byte = 0x01
	typeFetchRequest  byte = 0x02
	typeDigest        byte = 0x81
	typeRecords       byte = 0x82
)

// ErrMalformed is the error of every decoder here: the message is cut
// short, too long, of the wrong type or out of its limits. A peer that
// sends one is answered with nothing more.
var ErrMalformed = errors.New("view: malformed message")

func malformed(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, a...))
}

// Request is a client's question: a digest (Fetch empty) or records.
//
// DIGEST request (17 bytes):
//
//	+------+----------+----------+
//	| 0x01 | epoch u64| since u64|
//	+------+----------+----------+
//
// FETCH request:
//
//	+------+---------+-----------------------------------+
//	| 0x02 | count u8| count × (len u8 | peer ID bytes)  |
//	+------+---------+-----------------------------------+
//
// Integers are big-endian; count is 1..MaxFetch, len 1..MaxIDLen, and no
// peer ID appears twice.
type Request struct {
	Epoch, Since uint64    // DIGEST: where the client's last digest ended
	Fetch        []peer.ID // FETCH: the relays whose records it wants
}

// DigestEntry is one relay in a digest.
type DigestEntry struct {
	ID  peer.ID
	Seq uint64
}

// Digest answers a DIGEST request.
//
//	+------+----------+---------+---------+-----------+--------------------------------------+
//	| 0x81 | epoch u64| next u64| more u8 | count u16 | count × (len u8 | peer ID | seq u64)   |
//	+------+----------+---------+---------+-----------+--------------------------------------+
//
// more is 0 or 1; count ≤ MaxDigestEntries; no peer ID twice.
type Digest struct {
	Epoch, Next uint64
	More        bool
	Entries     []DigestEntry
}

// Records answer a FETCH request: signed descriptors, not yet verified.
//
//	+------+---------+---------------------------------------+
//	| 0x82 | count u8| count × (len u16 | signed descriptor) |
//	+------+---------+---------------------------------------+
//
// count ≤ MaxFetch, len 1..descriptor.MaxSize.
type Records [][]byte

// EncodeRequest encodes q; it fails on a request out of the limits.
func EncodeRequest(q Request) ([]byte, error) {
	if len(q.Fetch) == 0 {
		b := []byte{typeDigestRequest}
		b = binary.BigEndian.AppendUint64(b, q.Epoch)
		return binary.BigEndian.AppendUint64(b, q.Since), nil
	}
	if len(q.Fetch) > MaxFetch {
		return nil, malformed("%d peer IDs in a fetch", len(q.Fetch))
	}
	b := []byte{typeFetchRequest, byte(len(q.Fetch))}
	for _, id := range q.Fetch {
		var err error
		if b, err = appendID(b, id); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// DecodeRequest parses a request.
func DecodeRequest(b []byte) (Request, error) {
	var q Request
	if len(b) == 0 {
		return q, malformed("empty request")
	}
	switch b[0] {
	case typeDigestRequest:
		if len(b) != digestRequestSize {
			return q, malformed("digest request of %d bytes", len(b))
		}
		q.Epoch = binary.BigEndian.Uint64(b[1:])
		q.Since = binary.BigEndian.Uint64(b[9:])
		return q, nil
	case typeFetchRequest:
		r := reader{b: b[1:]}
		n := int(r.u8())
		if r.err == nil && (n == 0 || n > MaxFetch) {
			return q, malformed("fetch of %d peer IDs", n)
		}
		seen := map[peer.ID]bool{}
		for range n {
			id := r.id()
			if r.err == nil && seen[id] {
				return q, malformed("peer ID twice")
			}
			seen[id] = true
			q.Fetch = append(q.Fetch, id)
		}
		return q, r.end()
	}
	return q, malformed("request type %#x", b[0])
}

// EncodeDigest encodes d.
func EncodeDigest(d Digest) ([]byte, error) {
	if len(d.Entries) > MaxDigestEntries {
		return nil, malformed("%d digest entries", len(d.Entries))
	}
	b := []byte{typeDigest}
	b = binary.BigEndian.AppendUint64(b, d.Epoch)
	b = binary.BigEndian.AppendUint64(b, d.Next)
	more := byte(0)
	if d.More {
		more = 1
	}
	b = append(b, more)
	b = binary.BigEndian.AppendUint16(b, uint16(len(d.Entries)))
	for _, e := range d.Entries {
		var err error
		if b, err = appendID(b, e.ID); err != nil {
			return nil, err
		}
		b = binary.BigEndian.AppendUint64(b, e.Seq)
	}
	return b, nil
}

// DecodeDigest parses a digest.
func DecodeDigest(b []byte) (Digest, error) {
	var d Digest
	if len(b) > maxDigestSize {
		return d, malformed("digest of %d bytes", len(b))
	}
	r := reader{b: b}
	if t := r.u8(); r.err == nil && t != typeDigest {
		return d, malformed("type %#x where a digest was expected", t)
	}
	d.Epoch, d.Next = r.u64(), r.u64()
	switch r.u8() {
	case 0:
	case 1:
		d.More = true
	default:
		return d, malformed("more flag not 0 or 1")
	}
	n := int(r.u16())
	if n > MaxDigestEntries {
		return d, malformed("%d digest entries", n)
	}
	seen := map[peer.ID]bool{}
	for range n {
		e := DigestEntry{ID: r.id(), Seq: r.u64()}
		if r.err != nil {
			break
		}
		if seen[e.ID] {
			return d, malformed("peer ID twice")
		}
		seen[e.ID] = true
		d.Entries = append(d.Entries, e)
	}
	return d, r.end()
}

// EncodeRecords encodes rs.
func EncodeRecords(rs Records) ([]byte, error) {
	if len(rs) > MaxFetch {
		return nil, malformed("%d records", len(rs))
	}
	b := []byte{typeRecords, byte(len(rs))}
	for _, rec := range rs {
		if len(rec) == 0 || len(rec) > descriptor.MaxSize {
			return nil, malformed("record of %d bytes", len(rec))
		}
		b = binary.BigEndian.AppendUint16(b, uint16(len(rec)))
		b = append(b, rec...)
	}
	return b, nil
}

// DecodeRecords parses the answer to a fetch. The records are copies,
// still to be verified.
func DecodeRecords(b []byte) (Records, error) {
	if len(b) > maxRecordsSize {
		return nil, malformed("answer of %d bytes", len(b))
	}
	r := reader{b: b}
	if t := r.u8(); r.err == nil && t != typeRecords {
		return nil, malformed("type %#x where records were expected", t)
	}
	n := int(r.u8())
	if n > MaxFetch {
		return nil, malformed("%d records", n)
	}
	var rs Records
	for range n {
		l := int(r.u16())
		if r.err == nil && (l == 0 || l > descriptor.MaxSize) {
			return nil, malformed("record of %d bytes", l)
		}
		rec := r.bytes(l)
		if r.err != nil {
			break
		}
		rs = append(rs, append([]byte(nil), rec...))
	}
	if err := r.end(); err != nil {
		return nil, err
	}
	return rs, nil
}

func appendID(b []byte, id peer.ID) ([]byte, error) {
	if len(id) == 0 || len(id) > MaxIDLen {
		return nil, malformed("peer ID of %d bytes", len(id))
	}
	return append(append(b, byte(len(id))), id...), nil
}

// reader reads big-endian fields; after the first short read every
// field reads as zero and err says where it went wrong.
type reader struct {
	b   []byte
	err error
}

func (r *reader) bytes(n int) []byte {
	if r.err != nil {
		return nil
	}
	if len(r.b) < n {
		r.err = malformed("cut short")
		return nil
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

func (r *reader) u8() byte {
	if b := r.bytes(1); b != nil {
		return b[0]
	}
	return 0
}

func (r *reader) u16() uint16 {
	if b := r.bytes(2); b != nil {
		return binary.BigEndian.Uint16(b)
	}
	return 0
}

func (r *reader) u64() uint64 {
	if b := r.bytes(8); b != nil {
		return binary.BigEndian.Uint64(b)
	}
	return 0
}

// id reads a length-prefixed peer ID.
func (r *reader) id() peer.ID {
	n := int(r.u8())
	if r.err == nil && (n == 0 || n > MaxIDLen) {
		r.err = malformed("peer ID of %d bytes", n)
	}
	b := r.bytes(n)
	if r.err != nil {
		return ""
	}
	id, err := peer.IDFromBytes(b)
	if err != nil {
		r.err = malformed("peer ID: %v", err)
		return ""
	}
	return id
}

// end fails on a read error or on bytes left over.
func (r *reader) end() error {
	if r.err != nil {
		return r.err
	}
	if len(r.b) != 0 {
		return malformed("%d bytes after the message", len(r.b))
	}
	return nil
}
