package view

import (
	"bytes"
	"compress/flate"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/obolnet/obol/descriptor"
)

var update = flag.Bool("update", false, "regenerate specs/vectors/view-v3.json")

const vectorFile = "../../specs/vectors/view-v3.json"

// vectors is the layout of specs/vectors/view-v3.json. Relays are the
// identities of seed bytes 1 and 2 (the first byte of an Ed25519 seed,
// the rest zero); their records are published at Now and live an hour.
// The records answer is compressed with DEFLATE's stored blocks (level
// 0), so that no compressor's version changes the file; decoders read
// any DEFLATE stream.
type vectors struct {
	Now           int64          `json:"now"`
	PeerIDs       []string       `json:"peer_ids"`
	ShortIDs      []string       `json:"short_ids"`
	DigestRequest vecRequest     `json:"digest_request"`
	FetchRequest  vecRequest     `json:"fetch_request"`
	Digest        vecDigest      `json:"digest"`
	Records       vecRecords     `json:"records"`
	Invalid       []invalidEntry `json:"invalid"`
}

type vecRequest struct {
	Epoch   uint64   `json:"epoch,omitempty"`
	Since   uint64   `json:"since,omitempty"`
	PeerIDs []string `json:"fetch,omitempty"`
	Hex     string   `json:"hex"`
}

type vecDigest struct {
	Epoch   uint64     `json:"epoch"`
	Next    uint64     `json:"next"`
	Time    uint64     `json:"time_unix_ms"`
	More    bool       `json:"more"`
	Entries []vecEntry `json:"entries"`
	Hex     string     `json:"hex"`
}

type vecEntry struct {
	ShortID string `json:"short_id"`
	Seq     uint64 `json:"seq"`
}

type vecRecords struct {
	Records []string `json:"records_hex"`
	Hex     string   `json:"hex"`
	// Compressed is the same answer at DEFLATE's default level, as obol
	// sends it (a compressor of another version may write other bytes).
	Compressed string `json:"compressed_hex"`
}

type invalidEntry struct {
	Name    string `json:"name"`
	Message string `json:"message"` // request, digest or records
	Hex     string `json:"hex"`
}

// vectorMessages builds the vector messages from the fixed identities.
func vectorMessages(t testing.TB) (Request, Request, Digest, Records) {
	a, b := newTestRelay(t, 1, "10.1.0.1"), newTestRelay(t, 2, "10.2.0.1")
	dq := Request{Epoch: 0x0102030405060708, Since: 42}
	fq := Request{Fetch: []ShortID{Short(a.id), Short(b.id)}}
	d := Digest{Epoch: 0x0102030405060708, Next: 44, Time: uint64(t0.UnixMilli()) + 250, More: true,
		Entries: []DigestEntry{{Short(a.id), 7}, {Short(b.id), Gone}}}
	rs := Records{a.rec(t, 7, t0), b.rec(t, 1_800_000_000_123, t0)}
	return dq, fq, d, rs
}

func mustHex(t testing.TB, b []byte, err error) string {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func buildVectors(t testing.TB) vectors {
	dq, fq, d, rs := vectorMessages(t)
	v := vectors{Now: t0.Unix()}
	for _, r := range rs {
		u, _ := descriptor.Decode(r)
		v.PeerIDs = append(v.PeerIDs, u.ClaimedPeerID().String())
	}
	for _, id := range fq.Fetch {
		v.ShortIDs = append(v.ShortIDs, hex.EncodeToString(id[:]))
	}
	b, err := EncodeRequest(dq)
	v.DigestRequest = vecRequest{Epoch: dq.Epoch, Since: dq.Since, Hex: mustHex(t, b, err)}
	b, err = EncodeRequest(fq)
	v.FetchRequest = vecRequest{PeerIDs: v.ShortIDs, Hex: mustHex(t, b, err)}
	b, err = EncodeDigest(d)
	v.Digest = vecDigest{Epoch: d.Epoch, Next: d.Next, Time: d.Time, More: d.More, Hex: mustHex(t, b, err)}
	for _, e := range d.Entries {
		v.Digest.Entries = append(v.Digest.Entries, vecEntry{hex.EncodeToString(e.ID[:]), e.Seq})
	}
	b, err = encodeRecords(rs, flate.NoCompression)
	v.Records.Hex = mustHex(t, b, err)
	b, err = EncodeRecords(rs)
	v.Records.Compressed = mustHex(t, b, err)
	for _, r := range rs {
		v.Records.Records = append(v.Records.Records, hex.EncodeToString(r))
	}
	v.Invalid = invalidVectors(t, v)
	return v
}

// invalidVectors are messages every decoder must refuse with ErrMalformed.
func invalidVectors(t testing.TB, v vectors) []invalidEntry {
	h := func(s string) []byte { b, _ := hex.DecodeString(s); return b }
	dq, fq, dg, rs := h(v.DigestRequest.Hex), h(v.FetchRequest.Hex), h(v.Digest.Hex), h(v.Records.Hex)
	mod := func(b []byte, i int, x byte) string {
		c := bytes.Clone(b)
		c[i] = x
		return hex.EncodeToString(c)
	}
	twice := append([]byte{typeFetchRequest, 2}, fq[2:2+ShortIDLen]...)
	twice = append(twice, fq[2:2+ShortIDLen]...)
	// stored wraps a records body in one stored DEFLATE block.
	stored := func(body []byte) string {
		var w bytes.Buffer
		fw, _ := flate.NewWriter(&w, flate.NoCompression)
		fw.Write(body)
		fw.Close()
		return hex.EncodeToString(append([]byte{typeRecords}, w.Bytes()...))
	}
	// A DEFLATE stream that inflates to more than any answer holds.
	var bomb bytes.Buffer
	bw, _ := flate.NewWriter(&bomb, flate.BestCompression)
	bw.Write(make([]byte, maxRecordsBody+2))
	bw.Close()
	return []invalidEntry{
		{"empty request", "request", ""},
		{"unknown request type", "request", mod(dq, 0, 0x03)},
		{"digest request cut short", "request", hex.EncodeToString(dq[:16])},
		{"digest request with a trailing byte", "request", hex.EncodeToString(append(bytes.Clone(dq), 0))},
		{"fetch of zero peer IDs", "request", "0200"},
		{"fetch of 65 peer IDs", "request", mod(fq, 1, 65)},
		{"fetch naming a relay twice", "request", hex.EncodeToString(twice)},
		{"fetch cut short", "request", hex.EncodeToString(fq[:len(fq)-1])},
		{"fetch with a trailing byte", "request", hex.EncodeToString(append(bytes.Clone(fq), 0))},
		{"digest of another type", "digest", mod(dg, 0, typeRecords)},
		{"digest with more flag 2", "digest", mod(dg, 25, 2)},
		{"digest claiming more entries than it has", "digest", mod(dg, 27, 3)},
		{"digest of 2049 entries", "digest", hex.EncodeToString(append([]byte{typeDigest}, append(make([]byte, 25), 0x08, 0x01)...))},
		{"digest with a trailing byte", "digest", hex.EncodeToString(append(bytes.Clone(dg), 0))},
		{"digest naming a relay twice", "digest", hex.EncodeToString(append(append(bytes.Clone(dg[:26]), 0, 2), append(bytes.Clone(dg[28:48]), dg[28:48]...)...))},
		{"records of another type", "records", mod(rs, 0, typeDigest)},
		{"records that are not DEFLATE", "records", hex.EncodeToString([]byte{typeRecords, 0xff, 0xff, 0xff})},
		{"records with a record of length 0", "records", stored([]byte{1, 0, 0})},
		{"records with a record over 4096 bytes", "records", stored(append([]byte{1, 0x10, 0x01}, make([]byte, 4097)...))},
		{"records of 65", "records", stored([]byte{65})},
		{"records whose body is cut short", "records", stored([]byte{1, 0, 10, 1, 2})},
		{"records with a byte after the body", "records", stored([]byte{0, 0})},
		{"records whose DEFLATE stream is cut short", "records", hex.EncodeToString(rs[:len(rs)-1])},
		{"records with a byte after the DEFLATE stream", "records", hex.EncodeToString(append(bytes.Clone(rs), 0))},
		{"records that inflate past the largest answer", "records", hex.EncodeToString(append([]byte{typeRecords}, bomb.Bytes()...))},
	}
}

func decodeAny(kind string, b []byte) error {
	var err error
	switch kind {
	case "request":
		_, err = DecodeRequest(b)
	case "digest":
		_, err = DecodeDigest(b)
	case "records":
		_, err = DecodeRecords(b)
	}
	return err
}

// The vectors file matches what the encoders write, the decoders read it
// back, and every invalid vector is refused.
func TestVectors(t *testing.T) {
	want := buildVectors(t)
	if *update {
		b, _ := json.MarshalIndent(want, "", "  ")
		if err := os.WriteFile(vectorFile, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(vectorFile)
	if err != nil {
		t.Fatal(err)
	}
	var got vectors
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	got.Records.Compressed, want.Records.Compressed = "", "" // checked below
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(g, w) {
		t.Fatalf("%s is stale; regenerate with -update", vectorFile)
	}
	dq, fq, d, rs := vectorMessages(t)
	h := func(s string) []byte { b, _ := hex.DecodeString(s); return b }
	if q, err := DecodeRequest(h(got.DigestRequest.Hex)); err != nil || q.Epoch != dq.Epoch || q.Since != dq.Since || q.Fetch != nil {
		t.Fatalf("digest request: %+v %v", q, err)
	}
	if q, err := DecodeRequest(h(got.FetchRequest.Hex)); err != nil || len(q.Fetch) != 2 || q.Fetch[0] != fq.Fetch[0] || q.Fetch[1] != fq.Fetch[1] {
		t.Fatalf("fetch request: %+v %v", q, err)
	}
	for i, s := range got.ShortIDs {
		id, _ := peer.Decode(got.PeerIDs[i])
		if sh := Short(id); hex.EncodeToString(sh[:]) != s {
			t.Fatalf("short ID of %s", got.PeerIDs[i])
		}
	}
	if gd, err := DecodeDigest(h(got.Digest.Hex)); err != nil || gd.Epoch != d.Epoch || gd.Next != d.Next || gd.Time != d.Time || !gd.More || len(gd.Entries) != 2 || gd.Entries[1] != d.Entries[1] {
		t.Fatalf("digest: %+v %v", gd, err)
	}
	for _, x := range []string{got.Records.Hex, got.Records.Compressed} {
		if grs, err := DecodeRecords(h(x)); err != nil || len(grs) != 2 || !bytes.Equal(grs[0], rs[0]) || !bytes.Equal(grs[1], rs[1]) {
			t.Fatalf("records: %v", err)
		}
	}
	for _, iv := range got.Invalid {
		if err := decodeAny(iv.Message, h(iv.Hex)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", iv.Name, err)
		}
	}
}

// The encoders refuse what the decoders would.
func TestEncodeLimits(t *testing.T) {
	ids := make([]ShortID, MaxFetch+1)
	for i := range ids {
		ids[i] = Short(newTestRelay(t, byte(i+1), "10.0.0.1").id)
	}
	if _, err := EncodeRequest(Request{Fetch: ids}); !errors.Is(err, ErrMalformed) {
		t.Errorf("fetch of %d: %v", len(ids), err)
	}
	if _, err := EncodeRecords(make(Records, MaxFetch+1)); !errors.Is(err, ErrMalformed) {
		t.Errorf("%d records: %v", MaxFetch+1, err)
	}
	if _, err := EncodeRecords(Records{make([]byte, 4097)}); !errors.Is(err, ErrMalformed) {
		t.Errorf("oversized record: %v", err)
	}
	if _, err := EncodeDigest(Digest{Entries: make([]DigestEntry, MaxDigestEntries+1)}); !errors.Is(err, ErrMalformed) {
		t.Errorf("%d digest entries: %v", MaxDigestEntries+1, err)
	}
}
