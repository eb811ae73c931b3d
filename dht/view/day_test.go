package view_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/obolnet/obol/descriptor"
	"github.com/obolnet/obol/dht"
	"github.com/obolnet/obol/dht/view"
	"github.com/obolnet/obol/internal/node"
	"github.com/obolnet/obol/pay"
	"github.com/obolnet/obol/router"
)

// dayRelay is a relay of the day-long measurement: it signs descriptors
// as obol relay does with its defaults — onion keys of daily intervals
// made a lifetime ahead, a 6-day lifetime — as a paid guard and exit.
type dayRelay struct {
	key   crypto.PrivKey
	id    peer.ID
	addrs [][]byte
	recv  []byte
	keys  []descriptor.OnionKey // the schedule, by not-after
	born  time.Time
}

const (
	dayRotation  = node.DefaultOnionRotation
	dayOverlap   = 2 * descriptor.MaxClockSkew
	dayLifetime  = node.DefaultLifetime
	dayRepublish = node.DefaultRepublish
	dayRefresh   = node.ViewEvery
)

func newDayRelay(tb testing.TB, i int, born time.Time) *dayRelay {
	k, _, _ := crypto.GenerateEd25519Key(rand.Reader)
	id, _ := peer.IDFromPrivateKey(k)
	a4 := ma.StringCast(fmt.Sprintf("/ip4/10.%d.%d.1/udp/4001/quic-v1", i/250, i%250))
	a6 := ma.StringCast(fmt.Sprintf("/ip6/2001:db8:%x::1/udp/4001/quic-v1", i))
	pk, _ := btcec.NewPrivateKey()
	recv := pk.PubKey().SerializeCompressed()
	return &dayRelay{key: k, id: id, addrs: [][]byte{a4.Bytes(), a6.Bytes()}, recv: recv, born: born}
}

// sign signs the relay's descriptor at now, making keys ahead as
// internal/node's keyring does.
func (r *dayRelay) sign(tb testing.TB, seq uint64, now time.Time) []byte {
	var keys []descriptor.OnionKey
	for _, k := range r.keys {
		if k.NotAfter > now.Unix() {
			keys = append(keys, k)
		}
	}
	start := now
	if n := len(keys); n > 0 {
		start = time.Unix(keys[n-1].NotAfter, 0).Add(-dayOverlap)
	}
	for start.Before(now.Add(dayLifetime)) {
		var k [32]byte
		rand.Read(k[:])
		keys = append(keys, descriptor.OnionKey{Key: k, NotAfter: start.Add(dayRotation + dayOverlap).Unix()})
		start = start.Add(dayRotation)
	}
	r.keys = keys
	var exit []descriptor.PortRange
	p, _ := router.ParseExitPolicy(router.DefaultExitRules)
	for _, pr := range p.Summary() {
		exit = append(exit, descriptor.PortRange{Lo: pr.Lo, Hi: pr.Hi})
	}
	d := &descriptor.Relay{
		Version: descriptor.Version, PeerID: r.id, Seq: seq,
		Published: now.Unix(), Expires: now.Add(dayLifetime).Unix(),
		Addrs: r.addrs, OnionKeys: keys,
		Roles:     descriptor.RoleRelay | descriptor.RoleGuard | descriptor.RoleExit | descriptor.RoleIntro | descriptor.RoleRendezvous,
		ExitPorts: exit, Bandwidth: 12_500_000,
		Price: descriptor.Price{PerMiB: 2000, PerCircuit: 500},
		Payment: descriptor.Payment{
			Mints:       []descriptor.AcceptedMint{{URL: "https://mint.example.org:3338", Unit: "sat", Keysets: []string{"00ad268c4d1f5826"}}},
			ReceiverKey: r.recv, PrepayBytes: pay.DefaultPrepayBytes, GraceSeconds: 20, FreeBytes: pay.DefaultFreeBytes,
			MaxCapacity: 100_000, MinExpiry: 3600, MaxExpiry: 7 * 86400,
		},
		Software:  node.Software(),
		Protocols: []uint16{node.ProtocolVersion},
	}
	rec, err := descriptor.Sign(r.key, d)
	if err != nil {
		tb.Fatal(err)
	}
	return rec
}

// dayClock is the settable clock of the measurement.
type dayClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *dayClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

// dayResult is what a client read for its view over the measured days.
type dayResult struct {
	relays, days     int
	answers, queries int // bytes read and sent during the measured days
	fetched, gone    int
	viewMin          float64 // smallest share of the live relays held at a round
	stale            int     // stopped relays held at the end
}

// measureDays runs n relays publishing as obol relay does, 3 relays'
// views (Sets) that hear every republish as gossip would deliver it, and
// one client syncing from those 3 every refresh interval, on a clock
// moved by hand. The relays start one after another through a first
// lifetime, so that their records' renewals fall at times of their own as
// on a running network; then, for the measured days, a churn share of
// them stops each day and as many new ones start, spread through the day.
func measureDays(tb testing.TB, n int, churn float64, days int) dayResult {
	start := time.Now().Truncate(time.Second)
	clk := &dayClock{now: start}
	var relays []*dayRelay
	for i := range n {
		relays = append(relays, newDayRelay(tb, i, start.Add(time.Duration(i)*dayLifetime/time.Duration(n))))
	}
	var sets []*view.Set
	var srcs []peer.AddrInfo
	for range view.DefaultSources {
		s := view.NewSet(clk.Now)
		h := newHost(tb)
		view.Serve(h, s)
		sets = append(sets, s)
		srcs = append(srcs, peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()})
	}
	cache := dht.NewCache("", clk.Now)
	client := view.NewSyncer(newHost(tb), cache, view.SyncConfig{AllowSameSubnet: true, Now: clk.Now})
	ctx := context.Background()

	seq := uint64(0)
	publish := func(now time.Time, r *dayRelay) {
		seq++
		rec := r.sign(tb, seq, now)
		for _, s := range sets {
			if _, _, err := s.Offer(rec); err != nil {
				tb.Fatal(err)
			}
		}
	}
	live := map[*dayRelay]bool{}
	res := dayResult{relays: n, days: days, viewMin: 1}
	step := dayRefresh
	day := int(24 * time.Hour / step)
	startup := int(dayLifetime / step)
	perStep := churn * float64(n) / float64(day)
	next := n
	for i := 0; i <= startup+days*day; i++ {
		now := start.Add(time.Duration(i) * step)
		clk.mu.Lock()
		clk.now = now
		clk.mu.Unlock()
		measured := i > startup
		for _, r := range relays[:min(n, (i+1)*n/startup)] {
			if !live[r] && !r.born.After(now) && i <= startup {
				live[r] = true
				publish(r.born, r)
			}
		}
		if measured && int(float64(i-startup)*perStep) > int(float64(i-startup-1)*perStep) {
			for r := range live { // one stops: map order is random
				delete(live, r)
				break
			}
			r := newDayRelay(tb, next, now)
			next++
			live[r] = true
			publish(now, r)
		}
		// Each relay republishes every dayRepublish from its start.
		for r := range live {
			if age := now.Sub(r.born); age > 0 && age%dayRepublish < step {
				publish(now, r)
			}
		}
		rd, err := client.Sync(ctx, srcs)
		if err != nil {
			tb.Fatal(err)
		}
		if !measured {
			continue
		}
		res.answers += rd.Bytes
		res.queries += rd.Sent
		res.fetched += rd.Fetched
		res.gone += rd.Gone
		held := 0
		for r := range live {
			if _, ok := cache.Get(r.id); ok {
				held++
			}
		}
		res.viewMin = min(res.viewMin, float64(held)/float64(len(live)))
		res.stale = len(cache.Relays()) - held
	}
	return res
}

// BenchmarkViewDay measures the bytes a client reads and sends for its
// view in a day, per 1,000 relays, with relays that publish as obol relay
// does and 5 % of them replaced each day (OBOL_VIEW_DAY_RELAYS relays,
// default 1,000), over 3 days after a lifetime of start-up. It runs on a
// clock moved by hand: the 9 days take several minutes.
//
//	go test -run XXX -bench ViewDay -benchtime 1x ./dht/view
func BenchmarkViewDay(b *testing.B) {
	n := 1000
	if v, err := strconv.Atoi(os.Getenv("OBOL_VIEW_DAY_RELAYS")); err == nil && v > 1 {
		n = v
	}
	for b.Loop() {
		r := measureDays(b, n, 0.05, 3)
		per := 1000 / float64(r.relays) / float64(r.days)
		b.ReportMetric(float64(r.answers)*per/1e6, "read-MB/day/1000relays")
		b.ReportMetric(float64(r.queries)*per/1e6, "sent-MB/day/1000relays")
		b.ReportMetric(float64(r.fetched)/float64(r.relays)/float64(r.days), "records/relay/day")
		b.ReportMetric(float64(r.gone)/float64(r.days), "gone/day")
		b.ReportMetric(100*r.viewMin, "view-min-pct")
		b.ReportMetric(float64(r.stale), "stopped-held-at-end")
	}
}

// A client's bytes for its view stay near one record per relay a
// lifetime, and one for each new relay: the relays' republishes and
// onion-key turns are not fetched, every live relay is held at every
// round of the measured days, and stopped relays leave.
func TestViewDayCost(t *testing.T) {
	const churn = 0.1
	r := measureDays(t, 24, churn, 2)
	t.Logf("24 relays, 2 days: read %d B, sent %d B, %d records fetched, %d gone, view at least %.3f, %d stopped relays held at the end",
		r.answers, r.queries, r.fetched, r.gone, r.viewMin, r.stale)
	// A renewal is listed 15/16 into a record's life.
	want := 24*time.Hour.Hours()/(dayLifetime.Hours()*15/16) + churn
	if perDay := float64(r.fetched) / float64(r.relays) / float64(r.days); perDay > 1.25*want {
		t.Errorf("%.2f records per relay a day, want about %.2f", perDay, want)
	}
	if r.viewMin < 1 {
		t.Errorf("a round held %.3f of the live relays", r.viewMin)
	}
	if r.gone == 0 {
		t.Error("no stopped relay left the view")
	}
}
