package view

import (
	"bytes"
	"compress/flate"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/obolnet/obol/descriptor"
)

// Protocol is the stream protocol on which relays serve their view. One
// stream carries one request, closed for writing after it, and one
// response, closed after it.
const Protocol = "/obol/view/3"

// Limits of the wire format (specs/02-dht.md, "The view"). A message past
// any of them is malformed.
const (
	MaxFetch         = 64   // relays in one FETCH, records in its answer
	MaxDigestEntries = 2048 // entries in one DIGEST answer

	digestRequestSize = 1 + 8 + 8
	maxFetchRequest   = 1 + 1 + MaxFetch*ShortIDLen
	maxRequestSize    = maxFetchRequest
	maxDigestSize     = 1 + 8 + 8 + 8 + 1 + 2 + MaxDigestEntries*(ShortIDLen+8)
	// maxRecordsBody bounds the records once inflated; maxRecordsSize
	// the answer on the wire, which DEFLATE's stored blocks can make a
	// little longer than its content (5 bytes per 65,535).
	maxRecordsBody = 1 + MaxFetch*(2+descriptor.MaxSize)
	maxRecordsSize = 1 + maxRecordsBody + 5*(maxRecordsBody/65535+2)
)

// ShortIDLen is the length of a ShortID.
const ShortIDLen = 12

// ShortID names a relay in digests and fetches: the first 12 bytes of
// the SHA-256 of its peer ID's bytes. A peer ID takes 39 bytes; a relay
// is named in every digest of every source, so the short name is most
// of what a listing costs after the record. Finding a key whose peer ID
// has the ShortID of another costs about 2^96 hashes; a collision among
// 10,000 honest relays has probability about 2^-70.
type ShortID [ShortIDLen]byte

// Short is id's ShortID.
func Short(id peer.ID) ShortID {
	h := sha256.Sum256([]byte(id))
	return ShortID(h[:ShortIDLen])
}

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
//	+------+---------+------------------------+
//	| 0x02 | count u8| count × short ID (12)  |
//	+------+---------+------------------------+
//
// Integers are big-endian; count is 1..MaxFetch, and no short ID appears
// twice.
type Request struct {
	Epoch, Since uint64    // DIGEST: where the client's last digest ended
	Fetch        []ShortID // FETCH: the relays whose records it wants
}

// DigestEntry is one relay in a digest: its short ID and the sequence
// number of the record held, or Gone.
type DigestEntry struct {
	ID  ShortID
	Seq uint64
}

// Digest answers a DIGEST request.
//
//	+------+----------+---------+---------+---------+-----------+-------------------------------+
//	| 0x81 | epoch u64| next u64| time u64| more u8 | count u16 | count × (short ID | seq u64)  |
//	+------+----------+---------+---------+---------+-----------+-------------------------------+
//
// time is the relay's clock as it answers, in Unix milliseconds: a
// client sets the clock its creates carry by its sources' (Syncer.
// ClockOffset). more is 0 or 1; count ≤ MaxDigestEntries; no short ID
// twice.
type Digest struct {
	Epoch, Next uint64
	Time        uint64
	More        bool
	Entries     []DigestEntry
}

// Records answer a FETCH request: signed descriptors, not yet verified,
// compressed together with DEFLATE (RFC 1951): relays' records repeat
// their field names, mints, exit summaries and software strings.
//
//	+------+--------------------------------------------------------+
//	| 0x82 | DEFLATE( count u8 | count × (len u16 | descriptor) )    |
//	+------+--------------------------------------------------------+
//
// count ≤ MaxFetch, len 1..descriptor.MaxSize; nothing follows the
// DEFLATE stream's last block, and the inflated body is exactly count
// records long.
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
		b = append(b, id[:]...)
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
			return q, malformed("fetch of %d relays", n)
		}
		seen := map[ShortID]bool{}
		for range n {
			id := r.short()
			if r.err == nil && seen[id] {
				return q, malformed("short ID twice")
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
	b = binary.BigEndian.AppendUint64(b, d.Time)
	more := byte(0)
	if d.More {
		more = 1
	}
	b = append(b, more)
	b = binary.BigEndian.AppendUint16(b, uint16(len(d.Entries)))
	for _, e := range d.Entries {
		b = append(b, e.ID[:]...)
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
	d.Epoch, d.Next, d.Time = r.u64(), r.u64(), r.u64()
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
	seen := map[ShortID]bool{}
	for range n {
		e := DigestEntry{ID: r.short(), Seq: r.u64()}
		if r.err != nil {
			break
		}
		if seen[e.ID] {
			return d, malformed("short ID twice")
		}
		seen[e.ID] = true
		d.Entries = append(d.Entries, e)
	}
	return d, r.end()
}

// EncodeRecords encodes rs.
func EncodeRecords(rs Records) ([]byte, error) {
	return encodeRecords(rs, flate.DefaultCompression)
}

// deflaters keeps compressors between answers: each holds a few hundred
// kilobytes of tables.
var deflaters sync.Pool

// encodeRecords encodes rs at a DEFLATE level (flate.NoCompression for
// the vectors, whose bytes no compressor's version changes).
func encodeRecords(rs Records, level int) ([]byte, error) {
	if len(rs) > MaxFetch {
		return nil, malformed("%d records", len(rs))
	}
	body := []byte{byte(len(rs))}
	for _, rec := range rs {
		if len(rec) == 0 || len(rec) > descriptor.MaxSize {
			return nil, malformed("record of %d bytes", len(rec))
		}
		body = binary.BigEndian.AppendUint16(body, uint16(len(rec)))
		body = append(body, rec...)
	}
	out := bytes.NewBuffer([]byte{typeRecords})
	w, _ := deflaters.Get().(*flate.Writer)
	if w == nil || level != flate.DefaultCompression {
		var err error
		if w, err = flate.NewWriter(out, level); err != nil {
			return nil, err
		}
	} else {
		w.Reset(out)
	}
	if _, err := w.Write(body); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	if level == flate.DefaultCompression {
		deflaters.Put(w)
	}
	return out.Bytes(), nil
}

// DecodeRecords parses the answer to a fetch. The records are copies,
// still to be verified.
func DecodeRecords(b []byte) (Records, error) {
	if len(b) > maxRecordsSize {
		return nil, malformed("answer of %d bytes", len(b))
	}
	if len(b) == 0 {
		return nil, malformed("cut short")
	}
	if b[0] != typeRecords {
		return nil, malformed("type %#x where records were expected", b[0])
	}
	// bytes.Reader is an io.ByteReader: the inflater reads no further
	// than the stream's last block, so what is left over was sent after it.
	in := bytes.NewReader(b[1:])
	fr := flate.NewReader(in)
	body, err := io.ReadAll(io.LimitReader(fr, maxRecordsBody+1))
	fr.Close()
	switch {
	case err != nil:
		return nil, malformed("records: %v", err)
	case len(body) > maxRecordsBody:
		return nil, malformed("records inflate past %d bytes", maxRecordsBody)
	case in.Len() != 0:
		return nil, malformed("%d bytes after the records", in.Len())
	}
	r := reader{b: body}
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

// short reads a short ID.
func (r *reader) short() ShortID {
	var id ShortID
	copy(id[:], r.bytes(ShortIDLen))
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

// unixMilli is t in Unix milliseconds, as a digest's time (0 before the
// epoch).
func unixMilli(t time.Time) uint64 {
	return uint64(max(t.UnixMilli(), 0))
}
