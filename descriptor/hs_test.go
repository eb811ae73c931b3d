package descriptor

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha3"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

const hsVectorFile = "../specs/vectors/hidden-descriptor.json"

// hsVectors is the layout of specs/vectors/hidden-descriptor.json: every
// intermediate value of address encoding, key blinding, the DHT index,
// descriptor encryption and signing, and each message.
type hsVectors struct {
	Seed       string            `json:"identity_seed_hex"`
	Public     string            `json:"identity_public_hex"`
	Address    string            `json:"address"`
	Now        int64             `json:"now"`
	PeriodLen  int64             `json:"period_length_seconds"`
	PeriodNum  uint64            `json:"period_num"`
	Blinded    string            `json:"blinded_public_hex"`
	BlindedSig string            `json:"blinded_signature_of_abc_hex"`
	Indexes    []string          `json:"index_hex_by_replica"`
	Salt       string            `json:"salt_hex"`
	Inner      string            `json:"inner_plaintext_hex"`
	Record     string            `json:"record_replica0_hex"`
	Messages   map[string]string `json:"messages_hex"`
	Revision   hsRevisionVectors `json:"revision"`
	Auth       hsAuthVectors     `json:"client_auth"`
	PoW        hsPoWVectors      `json:"proof_of_work"`
}

// hsPoWVectors are one solved proof of work for the vectors' identity key:
// seed 32 × 0x61, cookie 20 × 0x05, effort 1000, the search starting at
// nonce 16 × 0x07.
type hsPoWVectors struct {
	Seed   string `json:"seed_hex"`
	Cookie string `json:"cookie_hex"`
	Effort uint32 `json:"effort"`
	Nonce  string `json:"nonce_hex"`
	Hash   string `json:"hash_hex"`
}

// hsAuthVectors are a record of the vectors' service that admits one
// client, with the values a client derives to open it. The randomness is
// SHAKE-256("obol hs auth vectors"): the ephemeral seed, the cookie, the
// fake entries, the salt, in that order.
type hsAuthVectors struct {
	ClientPrivate string `json:"client_private_hex"`
	ClientPublic  string `json:"client_public_hex"`
	Ephemeral     string `json:"service_ephemeral_public_hex"`
	Secret        string `json:"shared_secret_hex"`
	ClientID      string `json:"client_id_hex"`
	CookieKey     string `json:"cookie_key_hex"`
	Cookie        string `json:"descriptor_cookie_hex"`
	Inner         string `json:"inner_plaintext_hex"`
	Record        string `json:"record_replica0_hex"`
}

// hsRevisionVectors are the revision counter's intermediate values for
// the vectors' key: its AES key, the step of a publication at "now" for
// the current and the next period, and the counter at several steps.
type hsRevisionVectors struct {
	Key      string   `json:"key_hex"`
	StepCur  uint64   `json:"step_at_now_current_period"`
	StepNext uint64   `json:"step_at_now_next_period"`
	Steps    []uint64 `json:"steps"`
	Counters []uint64 `json:"counters"`
}

type fixedReader byte

func (r fixedReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r)
	}
	return len(p), nil
}

func hsTestKey(seed byte) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize))
}

func hsAddr(k ed25519.PrivateKey) HSAddress { return HSAddress(k.Public().(ed25519.PublicKey)) }

func sampleContent() *HSContent {
	var c HSContent
	for i := range 3 {
		pid := peer.ID(testKeyID(byte(10 + i)))
		c.Intros = append(c.Intros, IntroPoint{Relay: pid,
			OnionKey: [32]byte(bytes.Repeat([]byte{byte(0x20 + i)}, 32)),
			AuthKey:  [32]byte(hsTestKey(byte(0x30 + i)).Public().(ed25519.PublicKey)),
			EncKey:   [32]byte(bytes.Repeat([]byte{byte(0x40 + i)}, 32))})
	}
	return &c
}

func testKeyID(seed byte) peer.ID {
	id, err := peer.IDFromPrivateKey(testKey(seed))
	if err != nil {
		panic(err)
	}
	return id
}

func hsParams(now time.Time, replica uint8) HSParams {
	return HSParams{Period: PeriodAt(now, DefaultPeriod), Replica: replica, Revision: 7,
		Published: now, Expires: now.Add(3 * time.Hour)}
}

func buildHSVectors(t testing.TB) hsVectors {
	k := hsTestKey(1)
	now := time.Unix(vectorNow, 0)
	p := PeriodAt(now, DefaultPeriod)
	bk := BlindPrivateKey(k, p)
	v := hsVectors{Seed: hex.EncodeToString(k.Seed()), Public: hex.EncodeToString(k.Public().(ed25519.PublicKey)),
		Address: hsAddr(k).String(), Now: vectorNow, PeriodLen: int64(DefaultPeriod / time.Second),
		PeriodNum: p.Num, Blinded: hex.EncodeToString(bk.Public[:]),
		BlindedSig: hex.EncodeToString(bk.Sign([]byte("abc"))), Salt: hex.EncodeToString(bytes.Repeat([]byte{7}, hsSaltLen)),
		Messages: map[string]string{}}
	for r := range uint8(HSReplicas) {
		idx := HSIndex(bk.Public, r, p)
		v.Indexes = append(v.Indexes, hex.EncodeToString(idx[:]))
	}
	rec, err := SignHS(fixedReader(7), k, sampleContent(), hsParams(now, 0))
	if err != nil {
		t.Fatal(err)
	}
	v.Record = hex.EncodeToString(rec)
	u, _ := DecodeHS(rec)
	inner, err := encMode.Marshal(u.innerForTest(t, hsAddr(k)))
	if err != nil {
		t.Fatal(err)
	}
	v.Inner = hex.EncodeToString(inner)
	ei := NewEstablishIntro(hsTestKey(0x30), now)
	v.Messages["establish_intro"] = hex.EncodeToString(ei.Marshal())
	intro := Introduce{AuthKey: ei.AuthKey, Handshake: bytes.Repeat([]byte{0xaa}, 48+60)}
	v.Messages["introduce1"] = hex.EncodeToString(intro.Marshal())
	pl := IntroPayload{Cookie: [CookieLen]byte(bytes.Repeat([]byte{5}, CookieLen)),
		OnionKey: [32]byte(bytes.Repeat([]byte{6}, 32)), Relay: testKeyID(20)}
	v.Messages["intro_payload"] = hex.EncodeToString(pl.Marshal())
	r1 := Rendezvous1{Cookie: pl.Cookie, Handshake: [HandshakeRspLen]byte(bytes.Repeat([]byte{9}, HandshakeRspLen))}
	v.Messages["rendezvous1"] = hex.EncodeToString(r1.Marshal())
	v.Messages["hs_fetched"] = hex.EncodeToString(HSFetched{Total: 3, Chunk: []byte{1, 2, 3}}.Marshal())
	v.Auth = buildHSAuthVectors(t, k, now)
	v.PoW = buildPoWVectors(t, hsAddr(k))
	v.Revision = hsRevisionVectors{Key: hex.EncodeToString(bk.revisionKey()),
		StepCur: RevisionStep(p, now), StepNext: RevisionStep(p.Next(), now)}
	for _, x := range []uint64{0, 1, 2, 86399, v.Revision.StepNext, v.Revision.StepCur} {
		rev, err := bk.Revision(x)
		if err != nil {
			t.Fatal(err)
		}
		v.Revision.Steps, v.Revision.Counters = append(v.Revision.Steps, x), append(v.Revision.Counters, rev)
	}
	return v
}

// innerForTest decrypts the record's inner part and returns it decoded.
func (u *UnverifiedHS) innerForTest(t testing.TB, addr HSAddress) wireHSInner {
	r, err := u.Verify(time.Unix(vectorNow, 0))
	if err != nil {
		t.Fatal(err)
	}
	aead, iv := hsKeys(addr, r.Blinded, r.Period.Num, r.salt)
	plain, err := aead.Open(nil, iv, r.inner, nil)
	if err != nil {
		t.Fatal(err)
	}
	var w wireHSInner
	if err := decMode.Unmarshal(plain, &w); err != nil {
		t.Fatal(err)
	}
	return w
}

func authVectorRand() io.Reader {
	h := sha3.NewSHAKE256()
	h.Write([]byte("obol hs auth vectors"))
	return h
}

func authTestClient() *ecdh.PrivateKey {
	k, err := ecdh.X25519().NewPrivateKey(bytes.Repeat([]byte{0x51}, 32))
	if err != nil {
		panic(err)
	}
	return k
}

func buildHSAuthVectors(t testing.TB, k ed25519.PrivateKey, now time.Time) hsAuthVectors {
	cl := authTestClient()
	c := sampleContent()
	c.Clients = [][32]byte{[32]byte(cl.PublicKey().Bytes())}
	rec, err := SignHS(authVectorRand(), k, c, hsParams(now, 0))
	if err != nil {
		t.Fatal(err)
	}
	r := authVectorRand()
	var seed, cookie [32]byte
	io.ReadFull(r, seed[:])
	io.ReadFull(r, cookie[:])
	eph, _ := ecdh.X25519().NewPrivateKey(seed[:])
	secret, _ := eph.ECDH(cl.PublicKey())
	bk := BlindPrivateKey(k, PeriodAt(now, DefaultPeriod))
	cid, ck := authKeys(hsAddr(k), bk.Public, eph.PublicKey().Bytes(), secret)
	u, _ := DecodeHS(rec)
	inner, err := encMode.Marshal(u.innerForTest(t, hsAddr(k)))
	if err != nil {
		t.Fatal(err)
	}
	return hsAuthVectors{ClientPrivate: hex.EncodeToString(cl.Bytes()), ClientPublic: hex.EncodeToString(cl.PublicKey().Bytes()),
		Ephemeral: hex.EncodeToString(eph.PublicKey().Bytes()), Secret: hex.EncodeToString(secret),
		ClientID: hex.EncodeToString(cid), CookieKey: hex.EncodeToString(ck), Cookie: hex.EncodeToString(cookie[:]),
		Inner: hex.EncodeToString(inner), Record: hex.EncodeToString(rec)}
}

// A service that admits listed clients seals its intro points: a listed
// client reads them, while someone who knows the address but holds no
// listed key (or none at all) gets ErrHSUnauthorized and finds neither an
// intro relay nor a key of one in what it can decrypt; the number of
// clients is hidden by padding.
func TestHSClientAuth(t *testing.T) {
	k := hsTestKey(1)
	now := time.Unix(vectorNow, 0)
	alice, _ := ecdh.X25519().GenerateKey(rand.Reader)
	bob, _ := ecdh.X25519().GenerateKey(rand.Reader)
	mallory, _ := ecdh.X25519().GenerateKey(rand.Reader)
	c := sampleContent()
	c.Clients = [][32]byte{[32]byte(alice.PublicKey().Bytes()), [32]byte(bob.PublicKey().Bytes())}
	rec, err := SignHS(rand.Reader, k, c, hsParams(now, 0))
	if err != nil {
		t.Fatal(err)
	}
	u, err := DecodeHS(rec)
	if err != nil {
		t.Fatal(err)
	}
	r, err := u.Verify(now)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []*ecdh.PrivateKey{alice, bob} {
		got, err := r.Decrypt(hsAddr(k), mallory, key)
		if err != nil || !got.Equal(sampleContent()) {
			t.Fatalf("listed client: %v", err)
		}
	}
	for _, keys := range [][]*ecdh.PrivateKey{nil, {mallory}} {
		if _, err := r.Decrypt(hsAddr(k), keys...); !errors.Is(err, ErrHSUnauthorized) {
			t.Fatalf("unlisted client: %v", err)
		}
	}
	inner := u.innerForTest(t, hsAddr(k))
	if len(inner.Intros) != 0 || len(inner.Clients) != authPad {
		t.Fatalf("inner plaintext lists %d intro points and %d client entries", len(inner.Intros), len(inner.Clients))
	}
	plain, _ := encMode.Marshal(inner)
	for _, ip := range sampleContent().Intros {
		for _, secret := range [][]byte{[]byte(ip.Relay), ip.OnionKey[:], ip.AuthKey[:], ip.EncKey[:]} {
			if bytes.Contains(plain, secret) {
				t.Fatal("an unlisted client reads an intro point's relay or key")
			}
		}
	}
	// The largest record fits: every intro point, every client.
	for len(c.Intros) < MaxIntros {
		c.Intros = append(c.Intros, c.Intros[0])
	}
	c.Clients = make([][32]byte, MaxAuthClients)
	for i := range c.Clients {
		c.Clients[i] = [32]byte(alice.PublicKey().Bytes())
	}
	if _, err := SignHS(rand.Reader, k, c, hsParams(now, 0)); err != nil {
		t.Fatalf("%d intro points, %d clients: %v", MaxIntros, MaxAuthClients, err)
	}
	c.Clients = append(c.Clients, c.Clients[0])
	if _, err := SignHS(rand.Reader, k, c, hsParams(now, 0)); !errors.Is(err, ErrField) {
		t.Fatalf("%d clients: %v", MaxAuthClients+1, err)
	}
}

func buildPoWVectors(t testing.TB, id HSAddress) hsPoWVectors {
	seed := [PoWSeedLen]byte(bytes.Repeat([]byte{0x61}, PoWSeedLen))
	cookie := [CookieLen]byte(bytes.Repeat([]byte{5}, CookieLen))
	w, err := SolvePoW(fixedReader(7), seed, id, cookie, 1000, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := sha3.New256()
	h.Write([]byte(powDomain))
	h.Write(seed[:])
	h.Write(id[:])
	h.Write(cookie[:])
	h.Write(w.Nonce[:])
	h.Write([]byte{0, 0, 0x03, 0xe8})
	return hsPoWVectors{Seed: hex.EncodeToString(seed[:]), Cookie: hex.EncodeToString(cookie[:]), Effort: w.Effort,
		Nonce: hex.EncodeToString(w.Nonce[:]), Hash: hex.EncodeToString(h.Sum(nil))}
}

// A proof of work holds for its seed, key, cookie and effort only; the
// solver's work grows with the effort; descriptors carry the parameters.
func TestHSPoW(t *testing.T) {
	k := hsTestKey(1)
	now := time.Unix(vectorNow, 0)
	blinded := hsAddr(k)
	seed := [PoWSeedLen]byte{1}
	cookie := [CookieLen]byte{2}
	w, err := SolvePoW(rand.Reader, seed, blinded, cookie, 5000, nil)
	if err != nil || w.Verify(seed, blinded, cookie) != nil {
		t.Fatalf("solved proof: %v", err)
	}
	other := w
	other.Effort *= 1000 // claiming more than was done
	wrongCookie, wrongSeed := cookie, seed
	wrongCookie[0]++
	wrongSeed[0]++
	for name, err := range map[string]error{
		"effort": other.Verify(seed, blinded, cookie), "cookie": w.Verify(seed, blinded, wrongCookie),
		"seed": w.Verify(wrongSeed, blinded, cookie), "key": w.Verify(seed, HSAddress{}, cookie),
	} {
		if !errors.Is(err, ErrPoW) {
			t.Errorf("another %s: %v", name, err)
		}
	}
	if _, err := SolvePoW(rand.Reader, seed, blinded, cookie, 1<<24, func() bool { return true }); err == nil {
		t.Fatal("a stopped search returned a proof")
	}
	pl := IntroPayload{Relay: testKeyID(4), PoW: w}
	if got, err := ParseIntroPayload(pl.Marshal()); err != nil || got != pl {
		t.Fatalf("intro payload with a proof: %v", err)
	}
	c := sampleContent()
	c.PoW = PoWParams{Seed: seed, Effort: 300}
	rec, err := SignHS(rand.Reader, k, c, hsParams(now, 0))
	if err != nil {
		t.Fatal(err)
	}
	u, _ := DecodeHS(rec)
	r, err := u.Verify(now)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := r.Decrypt(hsAddr(k)); err != nil || got.PoW != c.PoW {
		t.Fatalf("descriptor proof-of-work parameters: %+v %v", got, err)
	}
	c.PoW.Effort = MaxPoWEffort + 1
	if _, err := SignHS(rand.Reader, k, c, hsParams(now, 0)); !errors.Is(err, ErrField) {
		t.Fatalf("effort beyond the bound: %v", err)
	}
}

func TestHSVectors(t *testing.T) {
	v := buildHSVectors(t)
	got, _ := json.MarshalIndent(v, "", "  ")
	got = append(got, '\n')
	if *update {
		if err := os.WriteFile(hsVectorFile, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(hsVectorFile)
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("vectors differ from %s (run go test -update after an intended change)", hsVectorFile)
	}
	// The file, read back, checks out by itself.
	var fv hsVectors
	if err := json.Unmarshal(want, &fv); err != nil {
		t.Fatal(err)
	}
	// The proof of work of the file holds, and its hash is the file's.
	seed, _ := hex.DecodeString(fv.PoW.Seed)
	cookie, _ := hex.DecodeString(fv.PoW.Cookie)
	nonce, _ := hex.DecodeString(fv.PoW.Nonce)
	hash, _ := hex.DecodeString(fv.PoW.Hash)
	pw := PoW{Effort: fv.PoW.Effort, Nonce: [PoWNonceLen]byte(nonce)}
	pub, _ := hex.DecodeString(fv.Public)
	if err := pw.Verify([PoWSeedLen]byte(seed), HSAddress(pub), [CookieLen]byte(cookie)); err != nil ||
		uint64(hash[0])<<24|uint64(hash[1])<<16|uint64(hash[2])<<8|uint64(hash[3]) > (1<<32-1)/uint64(fv.PoW.Effort) {
		t.Fatalf("proof of work of the vectors: %v", err)
	}
	// The client of the auth vectors opens the record with its key alone.
	rec, _ := hex.DecodeString(fv.Auth.Record)
	priv, _ := hex.DecodeString(fv.Auth.ClientPrivate)
	ck, err := ecdh.X25519().NewPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	u, err := DecodeHS(rec)
	if err != nil {
		t.Fatal(err)
	}
	r, err := u.Verify(time.Unix(fv.Now, 0))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := r.Decrypt(hsAddr(hsTestKey(1)), ck); err != nil || !got.Equal(sampleContent()) {
		t.Fatalf("auth vector record: %v", err)
	}
	blinded, _ := hex.DecodeString(fv.Blinded)
	sig, _ := hex.DecodeString(fv.BlindedSig)
	if !ed25519.Verify(blinded, []byte("abc"), sig) {
		t.Fatal("blinded signature of the vectors does not verify with crypto/ed25519")
	}
}

func TestHSAddress(t *testing.T) {
	a := hsAddr(hsTestKey(1))
	s := a.String()
	if len(s) != 56+len(HSSuffix) || !IsHSHost(s) {
		t.Fatalf("address %q", s)
	}
	for _, in := range []string{s, strings.ToUpper(s), "www." + s, strings.TrimSuffix(s, HSSuffix), s + ".", "A.b." + strings.ToUpper(s) + ".."} {
		got, err := ParseHSAddress(in)
		if err != nil || got != a {
			t.Fatalf("parse %q: %v", in, err)
		}
	}
	for _, host := range []string{s + ".", "x.Y.OBOL", "obol", "OBOL.", "a.ObOl..", "example.obol"} {
		if !IsHSHost(host) {
			t.Errorf("IsHSHost(%q) = false: the name would leave through an exit", host)
		}
	}
	for _, host := range []string{"example.com", "obol.example", "xobol", "example.com.", ""} {
		if IsHSHost(host) {
			t.Errorf("IsHSHost(%q) = true", host)
		}
	}
	typo := []byte(s)
	typo[10] = map[bool]byte{true: 'b', false: 'a'}[typo[10] == 'a']
	tests := []struct {
		in   string
		want error
	}{
		{string(typo), ErrHSChecksum},
		{s[1:], ErrHSAddress},
		{"example.obol", ErrHSAddress},
		{strings.Repeat("1", 56) + ".obol", ErrHSAddress},
	}
	for _, tt := range tests {
		if _, err := ParseHSAddress(tt.in); !errors.Is(err, tt.want) {
			t.Errorf("%q: got %v, want %v", tt.in, err, tt.want)
		}
	}
}

func TestBlinding(t *testing.T) {
	k := hsTestKey(1)
	now := time.Unix(vectorNow, 0)
	p := PeriodAt(now, DefaultPeriod)
	bk := BlindPrivateKey(k, p)
	pub, err := BlindPublicKey(hsAddr(k), p)
	if err != nil || pub != bk.Public {
		t.Fatalf("public blinding %x, private blinding %x (%v)", pub, bk.Public, err)
	}
	if !ed25519.Verify(bk.Public[:], []byte("msg"), bk.Sign([]byte("msg"))) {
		t.Fatal("blinded signature does not verify")
	}
	next := BlindPrivateKey(k, p.Next())
	if next.Public == bk.Public || next.Public == hsAddr(k) {
		t.Fatal("blinded keys of two periods coincide")
	}
	if s := p.Start(); PeriodAt(s, DefaultPeriod) != p || PeriodAt(s.Add(-time.Second), DefaultPeriod) == p {
		t.Fatal("period start is not the first instant of the period")
	}
}

func TestHSDescriptor(t *testing.T) {
	k := hsTestKey(1)
	now := time.Unix(vectorNow, 0)
	rec, err := SignHS(fixedReader(1), k, sampleContent(), hsParams(now, 1))
	if err != nil {
		t.Fatal(err)
	}
	u, err := DecodeHS(rec)
	if err != nil {
		t.Fatal(err)
	}
	r, err := u.Verify(now)
	if err != nil {
		t.Fatal(err)
	}
	if r.Index() != HSIndex(BlindPrivateKey(k, r.Period).Public, 1, r.Period) {
		t.Fatal("index")
	}
	c, err := r.Decrypt(hsAddr(k))
	if err != nil || !c.Equal(sampleContent()) {
		t.Fatalf("decrypt: %v", err)
	}
	if _, err := r.Decrypt(hsAddr(hsTestKey(2))); !errors.Is(err, ErrHSWrongKey) {
		t.Fatalf("other address: %v", err)
	}
	if _, err := u.Verify(now.Add(4 * time.Hour)); !errors.Is(err, ErrExpired) {
		t.Fatalf("expired: %v", err)
	}
	bad := bytes.Clone(rec)
	bad[len(bad)-70] ^= 1
	if u, err := DecodeHS(bad); err == nil {
		if _, err := u.Verify(now); !errors.Is(err, ErrSignature) {
			t.Fatalf("tampered: %v", err)
		}
	}
	if bytes.Contains(rec, k.Public().(ed25519.PublicKey)) || bytes.Contains(rec, []byte(sampleContent().Intros[0].Relay)) {
		t.Fatal("the record shows the identity key or an intro point in clear")
	}
}

func TestHSMessages(t *testing.T) {
	now := time.Unix(vectorNow, 0)
	ei := NewEstablishIntro(hsTestKey(3), now)
	if got, err := ParseEstablishIntro(ei.Marshal(), now); err != nil || got != ei {
		t.Fatalf("establish intro: %v", err)
	}
	if _, err := ParseEstablishIntro(ei.Marshal(), now.Add(time.Hour)); !errors.Is(err, ErrExpired) {
		t.Fatalf("stale establish intro: %v", err)
	}
	b := ei.Marshal()
	b[40] ^= 1
	if _, err := ParseEstablishIntro(b, now); !errors.Is(err, ErrSignature) {
		t.Fatalf("forged establish intro: %v", err)
	}
	pl := IntroPayload{Relay: testKeyID(4)}
	if got, err := ParseIntroPayload(pl.Marshal()); err != nil || got != pl {
		t.Fatalf("intro payload: %v", err)
	}
	for _, n := range []int{0, 10, AuthKeyLen + MaxHandshakeLen + 1} {
		if _, err := ParseIntroduce(make([]byte, n)); !errors.Is(err, ErrHSMessage) {
			t.Errorf("introduce of %d bytes: %v", n, err)
		}
	}
	if _, err := ParseHSFetched(HSFetched{Status: FetchNotFound, Total: 3}.Marshal()); err == nil {
		t.Error("HS_FETCHED with an error and a length")
	}
}

// The revision counter grows with the step under one key, shows neither
// the step nor a common value across periods, and matches the vectors'
// counters recomputed from their key alone.
func TestHSRevision(t *testing.T) {
	k := hsTestKey(1)
	p := PeriodAt(time.Unix(vectorNow, 0), DefaultPeriod)
	cur, next := BlindPrivateKey(k, p), BlindPrivateKey(k, p.Next())
	prev := uint64(0)
	for x := uint64(0); x < 3000; x += 1 + x/7 {
		rev, err := cur.Revision(x)
		if err != nil || rev <= prev {
			t.Fatalf("step %d: revision %d after %d (%v)", x, rev, prev, err)
		}
		prev = rev
	}
	now := time.Unix(vectorNow, 0)
	a, _ := cur.Revision(RevisionStep(p, now))
	b, _ := next.Revision(RevisionStep(p.Next(), now))
	if a == b || a == uint64(now.Unix()) || b == uint64(now.Unix()) {
		t.Fatalf("revisions of two periods at one moment: %d and %d", a, b)
	}
	if RevisionStep(p, now) == RevisionStep(p.Next(), now) {
		t.Fatal("steps of two periods coincide")
	}
	if _, err := cur.Revision(MaxRevisionStep + 1); !errors.Is(err, ErrField) {
		t.Fatalf("step beyond the bound: %v", err)
	}
	if got := RevisionStep(p, p.Start().Add(-2*p.Length)); got != 0 {
		t.Fatalf("step before the base: %d", got)
	}

	// From the file: AES-256-CTR keystream, sum of 1 + LE16 words.
	raw, err := os.ReadFile(hsVectorFile)
	if err != nil {
		t.Fatal(err)
	}
	var fv hsVectors
	if err := json.Unmarshal(raw, &fv); err != nil {
		t.Fatal(err)
	}
	key, _ := hex.DecodeString(fv.Revision.Key)
	if len(fv.Revision.Steps) == 0 || len(fv.Revision.Steps) != len(fv.Revision.Counters) {
		t.Fatalf("vector file: %d steps, %d counters", len(fv.Revision.Steps), len(fv.Revision.Counters))
	}
	for i, x := range fv.Revision.Steps {
		blk, err := aes.NewCipher(key)
		if err != nil {
			t.Fatal(err)
		}
		ks := make([]byte, 2*(x+1))
		cipher.NewCTR(blk, make([]byte, 16)).XORKeyStream(ks, ks)
		var sum uint64
		for j := 0; j < len(ks); j += 2 {
			sum += 1 + (uint64(ks[j]) | uint64(ks[j+1])<<8)
		}
		if sum != fv.Revision.Counters[i] {
			t.Fatalf("step %d: file says %d, recomputed %d", x, fv.Revision.Counters[i], sum)
		}
	}
}
