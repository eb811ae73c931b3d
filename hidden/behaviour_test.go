package hidden_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/obolnet/obol/descriptor"
	"github.com/obolnet/obol/hidden"
)

// A mistyped address fails its checksum before any circuit is built; a
// well-formed address of no service fails with ErrUnknownService, not a
// timeout.
func TestWrongAddress(t *testing.T) {
	tn := newTestNet(t, 5)
	c, _ := tn.client()
	good := hidden.AddressOf(newKey(t))
	typo := []byte(good)
	typo[3] = map[bool]byte{true: 'b', false: 'a'}[typo[3] == 'a']
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := c.Dial(ctx, "tcp", string(typo)+":80"); !errors.Is(err, descriptor.ErrHSChecksum) {
		t.Fatalf("mistyped address: %v", err)
	}
	if _, err := c.Dial(ctx, "tcp", "short.obol:80"); !errors.Is(err, descriptor.ErrHSAddress) {
		t.Fatalf("short address: %v", err)
	}
	start := time.Now()
	_, err := c.Dial(ctx, "tcp", good+":80")
	if !errors.Is(err, hidden.ErrUnknownService) || ctx.Err() != nil {
		t.Fatalf("unknown service: %v", err)
	}
	t.Logf("unknown service refused after %v: %v", time.Since(start), err)
}

// What the DHT stores names neither the service nor its intro points, and
// the records of two periods cannot be linked from what they show: only
// the address links them.
func TestDHTRecordsRevealNothing(t *testing.T) {
	tn := newTestNet(t, 6)
	dirs := tn.record()
	key := newKey(t)
	l, _ := tn.listen(key)
	eventually(t, 60*time.Second, "every replica stored", func() bool { return l.Status().Stored == 2*descriptor.HSReplicas })
	addr := descriptor.HSAddress(key.Public().(ed25519.PublicKey))
	var recs []*descriptor.HSRecord
	var raws [][]byte
	for _, d := range dirs {
		for _, raw := range d.stored() {
			u, err := descriptor.DecodeHS(raw)
			if err != nil {
				t.Fatal(err)
			}
			r, err := u.Verify(time.Now())
			if err != nil {
				t.Fatal(err)
			}
			recs, raws = append(recs, r), append(raws, raw)
		}
	}
	if len(recs) < 2 {
		t.Fatalf("%d records stored", len(recs))
	}
	secrets := [][]byte{addr[:], []byte(l.Address()), []byte(strings.TrimSuffix(l.Address(), ".obol"))}
	for _, id := range l.Status().Intros {
		secrets = append(secrets, []byte(id))
	}
	for i, raw := range raws {
		for _, s := range secrets {
			if bytes.Contains(raw, s) {
				t.Fatalf("record %d contains a secret in clear", i)
			}
		}
	}
	periods := map[uint64][]*descriptor.HSRecord{}
	for _, r := range recs {
		periods[r.Period.Num] = append(periods[r.Period.Num], r)
	}
	cur := descriptor.PeriodAt(time.Now(), descriptor.DefaultPeriod)
	a, b := periods[cur.Num], periods[cur.Num+1]
	if len(a) == 0 || len(b) == 0 {
		t.Fatalf("records of the current (%d) and next (%d) period expected", len(a), len(b))
	}
	// Everything derivable from a current record without the address.
	derivable := map[[32]byte]bool{}
	for _, r := range a {
		derivable[r.Blinded] = true
		for _, p := range []descriptor.Period{r.Period, r.Period.Next()} {
			if k, err := descriptor.BlindPublicKey(r.Blinded, p); err == nil {
				derivable[k] = true
			}
			for rep := range uint8(descriptor.HSReplicas) {
				derivable[descriptor.HSIndex(r.Blinded, rep, p)] = true
			}
		}
	}
	for _, r := range b {
		if derivable[r.Blinded] || derivable[r.Index()] {
			t.Fatal("next period's record is derivable from the current one without the address")
		}
		if _, err := r.Decrypt(descriptor.HSAddress(newKey(t).Public().(ed25519.PublicKey))); !errors.Is(err, descriptor.ErrHSWrongKey) {
			t.Fatalf("opened with a wrong address: %v", err)
		}
		if want, _ := descriptor.BlindPublicKey(addr, r.Period); want != r.Blinded {
			t.Fatal("with the address the record's key is derivable")
		}
		if _, err := r.Decrypt(addr); err != nil {
			t.Fatalf("with the address the record opens: %v", err)
		}
		// No clear-text value in common with a current record.
		for _, c := range a {
			if c.Revision == r.Revision || c.Published == r.Published || c.Expires == r.Expires {
				t.Fatalf("records of two periods share a revision, published time or expiry: %+v %+v", c, r)
			}
		}
	}
}

// The service replaces a lost intro point and republishes; a new client
// still connects. After a restart with the same key the address is the
// same, and a client that cached the old descriptor reaches it again.
func TestIntroLossAndRestart(t *testing.T) {
	tn := newTestNet(t, 8)
	key := newKey(t)
	l, _ := tn.listen(key)
	distinctIntros(t, l)
	body := []byte("hello from the hidden service")
	serveHTTP(t, l, body)
	c, _ := tn.client()
	if got, err := get(t, c, l.Address()); err != nil || !bytes.Equal(got, body) {
		t.Fatalf("before: %q %v", got, err)
	}
	before := l.Status()
	victim := before.Intros[0]
	for _, r := range tn.relays {
		if r.id() == victim {
			tn.dir.Unlist(victim)
			r.stop()
		}
	}
	start := time.Now()
	eventually(t, 60*time.Second, "a replaced intro point and a new descriptor", func() bool {
		s := l.Status()
		return s.Published > before.Published && len(s.Intros) == len(before.Intros) && !contains(s.Intros, victim)
	})
	t.Logf("intro point replaced and descriptor republished in %v", time.Since(start))
	distinctIntros(t, l)
	c2, _ := tn.client()
	if got, err := get(t, c2, l.Address()); err != nil || !bytes.Equal(got, body) {
		t.Fatalf("after intro loss: %q %v", got, err)
	}

	t.Logf("new client connected after %v", time.Since(start))
	addr := l.Address()
	nextSecond() // see nextSecond
	l.Close()
	l2, _ := tn.listen(key)
	distinctIntros(t, l2)
	if l2.Address() != addr {
		t.Fatal("address changed across a restart")
	}
	serveHTTP(t, l2, body)
	t.Logf("restarted after %v", time.Since(start))
	// The cached descriptor names the lost relay as an intro point: the
	// client tries only the listed ones, and then fetches anew.
	var mu sync.Mutex
	var tried []peer.ID
	hidden.OnIntroduce(t, func(id peer.ID) {
		mu.Lock()
		tried = append(tried, id)
		mu.Unlock()
	})
	if got, err := get(t, c, addr); err != nil || !bytes.Equal(got, body) {
		t.Fatalf("after restart, client with a cached descriptor: %q %v", got, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if contains(tried, victim) {
		t.Fatalf("introduced through the intro point of a relay the directory does not list: %v", tried)
	}
	if len(tried) < 3 { // two refusals from the old intro points, then the new
		t.Fatalf("introductions through %v: the cached descriptor's intro points were not tried", tried)
	}
}

// distinctIntros fails unless l's intro points are on distinct relays:
// established at once, they each excluded only those already up, and
// two could land on one relay, whose loss then took both.
func distinctIntros(t *testing.T, l *hidden.Listener) {
	t.Helper()
	ids := l.Status().Intros
	for i, id := range ids {
		if contains(ids[:i], id) {
			t.Fatalf("two intro points on relay %s: %v", id, ids)
		}
	}
}

func contains(ids []peer.ID, id peer.ID) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

// No circuit ends at a relay next to the client or the service: the
// intro, rendezvous and descriptor relays see only relays as previous
// hops, and a spliced circuit shows no next hop. Each endpoint builds
// from its small guard set only.
func TestRelaysLearnNoEndpoint(t *testing.T) {
	tn := newTestNet(t, 7)
	l, sh := tn.listen(newKey(t))
	body := bytes.Repeat([]byte("x"), 5000)
	serveHTTP(t, l, body)
	c, ch := tn.client()
	conn, err := c.Dial(context.Background(), "tcp", l.Address()+":80")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if got, err := get(t, c, l.Address()); err != nil || !bytes.Equal(got, body) {
		t.Fatalf("%v", err)
	}
	endpoints := map[peer.ID]bool{sh.ID(): true, ch.ID(): true}
	terminal := 0
	firstHops := map[peer.ID]map[peer.ID]bool{sh.ID(): {}, ch.ID(): {}}
	for _, r := range tn.relays {
		for _, k := range r.Router.Circuits() {
			if endpoints[k.Prev] {
				firstHops[k.Prev][r.id()] = true
			}
			if k.Next == "" {
				terminal++
				if endpoints[k.Prev] {
					t.Fatalf("relay %s ends a circuit that comes straight from an endpoint", r.id())
				}
			}
			if endpoints[k.Next] {
				t.Fatal("a relay forwards to an endpoint")
			}
		}
	}
	if terminal < len(l.Status().Intros)+2 {
		t.Fatalf("only %d circuits end at a relay; expected intro circuits and a splice", terminal)
	}
	for id, hops := range firstHops {
		if len(hops) > 2 {
			t.Fatalf("%s built circuits from %d first hops; it keeps a guard set of 2", id, len(hops))
		}
	}
}

// refusingDir refuses stores while its shared budget lasts, as relays
// whose DHT puts wait on a peer that went away would.
type refusingDir struct {
	hidden.DHTDirectory
	budget *atomic.Int64
}

func (d refusingDir) StoreHS(ctx context.Context, rec []byte) error {
	if d.budget.Add(-1) >= 0 {
		return errors.New("refused")
	}
	return d.DHTDirectory.StoreHS(ctx, rec)
}

// A replica the relay it was offered to cannot store is offered to
// another: the first store of every replica of a publication fails, and
// the service still publishes.
func TestPublishTriesAnotherRelay(t *testing.T) {
	tn := newTestNet(t, 6)
	var budget atomic.Int64
	budget.Store(2 * descriptor.HSReplicas) // one first attempt for every replica of both periods
	for _, r := range tn.relays {
		r.Router.SetHSDirectory(refusingDir{DHTDirectory: hidden.DHTDirectory{Node: r.dht.Node}, budget: &budget})
	}
	l, _ := tn.listen(newKey(t))
	if budget.Load() >= 0 {
		t.Fatalf("%d stores left to refuse: the test refused fewer than one a replica", budget.Load())
	}
	if s := l.Status(); s.Published == 0 {
		t.Fatalf("status %+v: no replica stored", s)
	}
}

// A service restarted within the second of its last publication signs,
// at first, the revision it signed then (revision steps count seconds),
// and the DHT nodes that hold its old records refuse the new ones. It
// signs those replicas again above them, so that every replica is stored
// and no client is left with the old intro points. The clock is frozen:
// both runs publish in one second.
func TestRestartInTheSameSecondStoresEveryReplica(t *testing.T) {
	tn := newTestNet(t, 6)
	key := newKey(t)
	frozen := time.Now()
	listen := func() *hidden.Listener {
		n, _ := tn.endpoint()
		n.Now = func() time.Time { return frozen }
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		l, err := hidden.Listen(ctx, hidden.ServiceConfig{Config: n, Key: key})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		return l
	}
	first := listen()
	eventually(t, time.Minute, "every replica of the first run stored", func() bool { return first.Status().Stored == 6 })
	first.Close()
	again := listen()
	eventually(t, time.Minute, "every replica of the restarted service stored", func() bool { return again.Status().Stored == 6 })
}

// staleOnce is a relay's descriptor directory that answers each index of
// old once with that old record, as a DHT node does whose replica of a
// republished descriptor has not been stored yet; then the DHT's own.
type staleOnce struct {
	hidden.DHTDirectory
	mu     *sync.Mutex
	old    map[[32]byte][]byte // served and removed
	served *int
}

func (d staleOnce) FetchHS(ctx context.Context, index [32]byte) ([]byte, error) {
	d.mu.Lock()
	rec, ok := d.old[index]
	delete(d.old, index)
	if ok {
		*d.served++
	}
	d.mu.Unlock()
	if ok {
		return rec, nil
	}
	return d.DHTDirectory.FetchHS(ctx, index)
}

// A client that fetches a replica the service has already replaced finds
// every intro point it names left by the service, and looks for a newer
// replica instead of giving up.
func TestStaleReplicaFetchedAgain(t *testing.T) {
	tn := newTestNet(t, 6)
	dirs := tn.record()
	key := newKey(t)
	l, _ := tn.listen(key)
	eventually(t, 30*time.Second, "every replica stored", func() bool { return l.Status().Stored >= 2*descriptor.HSReplicas })
	old := map[[32]byte][]byte{}
	for _, d := range dirs {
		for _, b := range d.stored() {
			if u, err := descriptor.DecodeHS(b); err == nil {
				if r, err := u.Verify(time.Now()); err == nil {
					old[r.Index()] = b
				}
			}
		}
	}
	nextSecond()
	l.Close()
	l2, _ := tn.listen(key)
	eventually(t, 30*time.Second, "every replica stored again", func() bool { return l2.Status().Stored >= 2*descriptor.HSReplicas })
	body := []byte("restarted")
	serveHTTP(t, l2, body)
	var mu sync.Mutex
	served := 0
	for i, r := range tn.relays {
		r.Router.SetHSDirectory(staleOnce{DHTDirectory: hidden.DHTDirectory{Node: tn.relays[i].dht.Node}, mu: &mu, old: old, served: &served})
	}
	c, _ := tn.client()
	if got, err := get(t, c, l2.Address()); err != nil || !bytes.Equal(got, body) {
		t.Fatalf("through a stale replica first: %q %v", got, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if served == 0 {
		t.Fatal("no stale replica was served: the test did not test")
	}
}

// nextSecond waits for the clock's next whole second. Revisions count
// seconds: a service restarted within the second of its last publication
// may sign the revision it signed then, and which of the two records DHT
// nodes keep is then a toss (hidden/publish.go startSteps). These tests
// restart services within milliseconds, which a person does not.
func nextSecond() {
	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second + 10*time.Millisecond)))
}
