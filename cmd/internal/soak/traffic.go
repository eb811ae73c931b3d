package soak

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/http/httptrace"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/proxy"
)

// A web server of deterministic bodies: /bytes/N answers N bytes drawn
// from a generator keyed by N, so a client checks every byte without the
// server telling it anything else.

func serveBytes(w http.ResponseWriter, r *http.Request) {
	n, err := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/bytes/"))
	if err != nil || n < 0 || n > 1<<30 {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Length", strconv.Itoa(n))
	g := newBody(n)
	buf := make([]byte, 32<<10)
	for sent := 0; sent < n; {
		k := min(len(buf), n-sent)
		g.Read(buf[:k])
		if _, err := w.Write(buf[:k]); err != nil {
			return
		}
		sent += k
	}
}

// newBody is the generator of /bytes/n.
func newBody(n int) io.Reader {
	var key [32]byte
	binary.BigEndian.PutUint64(key[:], uint64(n))
	return chachaReader{mrand.NewChaCha8(key)}
}

type chachaReader struct{ c *mrand.ChaCha8 }

func (r chachaReader) Read(b []byte) (int, error) { return r.c.Read(b) }

// startWeb serves /bytes/N on loopback until ctx ends.
func startWeb(ctx context.Context) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: http.HandlerFunc(serveBytes), ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(ln) }()
	return ln.Addr().String(), func() { srv.Close(); <-done }, nil
}

// Request is one GET through a proxy, as recorded.
type Request struct {
	Kind   string    `json:"kind"` // web or bulk
	Client int       `json:"client"`
	Size   int       `json:"size"`
	Start  time.Time `json:"start"`
	// TTFBms is from the start (SOCKS connect, circuit, request) to the
	// first byte of the answer; 0 when none came.
	TTFBms float64 `json:"ttfb_ms"`
	// Seconds is from the start to the last byte or the failure.
	Seconds float64 `json:"s"`
	Got     int     `json:"got"`
	Err     string  `json:"error,omitempty"`
}

func (r Request) ok() bool { return r.Err == "" }

func (r Request) end() time.Time {
	return r.Start.Add(time.Duration(r.Seconds * float64(time.Second)))
}

// MBps is the rate of a completed request from its first byte to its
// last, in 10^6 bytes per second.
func (r Request) MBps() float64 {
	d := r.Seconds - r.TTFBms/1000
	if !r.ok() || d <= 0 {
		return 0
	}
	return float64(r.Size) / d / 1e6
}

// fetch GETs /bytes/size through the SOCKS proxy at socks as user (its
// isolation key: one user, one circuit) and checks every byte.
func fetch(ctx context.Context, socks, web, user string, size int) Request {
	rq := Request{Size: size, Start: time.Now()}
	var first time.Time
	err := get(ctx, socks, web, user, size, &rq.Got, &first)
	rq.Seconds = time.Since(rq.Start).Seconds()
	if !first.IsZero() {
		rq.TTFBms = float64(first.Sub(rq.Start)) / float64(time.Millisecond)
	}
	if err != nil {
		rq.Err = err.Error()
	}
	return rq
}

func get(ctx context.Context, socks, web, user string, size int, got *int, first *time.Time) error {
	dialer, err := proxy.SOCKS5("tcp", socks, &proxy.Auth{User: user, Password: "x"}, proxy.Direct)
	if err != nil {
		return err
	}
	tr := &http.Transport{DialContext: dialer.(proxy.ContextDialer).DialContext, DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	trace := &httptrace.ClientTrace{GotFirstResponseByte: func() { *first = time.Now() }}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), http.MethodGet,
		fmt.Sprintf("http://%s/bytes/%d", web, size), nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %s", resp.Status)
	}
	return compare(resp.Body, newBody(size), size, got)
}

// errDiffers is a body that is not the one sent: never allowed.
var errDiffers = errors.New("body differs from the one sent")

// compare reads body to its end and checks it against want, byte for byte.
func compare(body, want io.Reader, size int, got *int) error {
	a, b := make([]byte, 64<<10), make([]byte, 64<<10)
	for {
		n, err := body.Read(a)
		if n > 0 {
			if *got+n > size {
				return fmt.Errorf("%w: more than %d bytes", errDiffers, size)
			}
			io.ReadFull(want, b[:n])
			if !bytes.Equal(a[:n], b[:n]) {
				return fmt.Errorf("%w at byte %d or after", errDiffers, *got)
			}
			*got += n
		}
		if err == io.EOF {
			if *got != size {
				return fmt.Errorf("short body: %d of %d bytes", *got, size)
			}
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// Traffic is what each client runs: web users fetching pages with think
// time between them, and bulk users fetching large files.
type Traffic struct {
	WebUsers  int           // per client, each with a SOCKS user name of its own
	BulkUsers int           // per client; every bulk download has a user name (circuit) of its own
	Think     time.Duration // mean pause between a user's requests (exponential)
	WebMin    int           // bytes
	WebMax    int
	BulkMin   int
	BulkMax   int
	// WebTimeout and BulkTimeout bound one request.
	WebTimeout, BulkTimeout time.Duration
}

// recorder keeps every request.
type recorder struct {
	mu   sync.Mutex
	reqs []Request
}

func (r *recorder) add(rq Request) {
	r.mu.Lock()
	r.reqs = append(r.reqs, rq)
	r.mu.Unlock()
}

func (r *recorder) all() []Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Request(nil), r.reqs...)
}

// runTraffic runs every client's users until stopAt, lets the requests in
// flight end (each within its timeout; ctx aborts them), and returns.
func runTraffic(ctx context.Context, t Traffic, clients []*client, web string, stopAt time.Time, rec *recorder) {
	var wg sync.WaitGroup
	for ci, c := range clients {
		for u := range t.WebUsers {
			wg.Go(func() {
				user := fmt.Sprintf("web-%d-%d", ci, u)
				t.user(ctx, stopAt, func(int) Request {
					rctx, cancel := context.WithTimeout(ctx, t.WebTimeout)
					defer cancel()
					rq := fetch(rctx, c.socks, web, user, t.WebMin+mrand.N(t.WebMax-t.WebMin+1))
					rq.Kind, rq.Client = "web", ci
					return rq
				}, rec)
			})
		}
		for u := range t.BulkUsers {
			wg.Go(func() {
				t.user(ctx, stopAt, func(i int) Request {
					rctx, cancel := context.WithTimeout(ctx, t.BulkTimeout)
					defer cancel()
					user := fmt.Sprintf("bulk-%d-%d-%d", ci, u, i)
					rq := fetch(rctx, c.socks, web, user, t.BulkMin+mrand.N(t.BulkMax-t.BulkMin+1))
					rq.Kind, rq.Client = "bulk", ci
					return rq
				}, rec)
			})
		}
	}
	wg.Wait()
}

// user runs one request after another, with think time between them,
// until stopAt.
func (t Traffic) user(ctx context.Context, stopAt time.Time, one func(i int) Request, rec *recorder) {
	// Users start spread over the first think time.
	pause := time.Duration(mrand.Int64N(int64(t.Think) + 1))
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-time.After(pause):
		}
		if time.Now().After(stopAt) {
			return
		}
		rec.add(one(i))
		pause = time.Duration(mrand.ExpFloat64() * float64(t.Think))
	}
}
