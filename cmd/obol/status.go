package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/obolnet/obol/internal/metrics"
	"github.com/obolnet/obol/internal/status"
)

// observeFlags are a node's opt-in HTTP endpoints: Prometheus metrics and
// the status page. relay registers them; proxy and serve can too.
type observeFlags struct {
	metrics      string
	status       string
	statusRemote bool
}

func (o *observeFlags) register(fs *flag.FlagSet) {
	fs.Var(hostPortValue{&o.metrics}, "metrics", "serve Prometheus metrics at http://`host:port`/metrics, e.g. 127.0.0.1:9101 (default off)")
	fs.Var(hostPortValue{&o.status}, "status", "serve the status page and /api/status on `host:port`, e.g. 127.0.0.1:9102 (default off; loopback only unless -status-remote)")
	fs.BoolVar(&o.statusRemote, "status-remote", false, "let -status listen beyond loopback and answer any host name (the page shows every circuit's neighbours: put it behind authentication)")
}

// check refuses what no single flag can: a status page off loopback
// without -status-remote, and both endpoints on one address.
func (o *observeFlags) check(fs *flag.FlagSet, src *origin) (int, bool) {
	if o.status != "" && !o.statusRemote && !isLoopbackListen(o.status) {
		return src.invalid(fs, "status", o.status, "the status page shows which peers each circuit comes from and goes to; listen on loopback (127.0.0.1:9102) or set status-remote"), false
	}
	if o.status != "" && o.status == o.metrics && !strings.HasSuffix(o.status, ":0") {
		return src.invalid(fs, "status", o.status, "must differ from the metrics address"), false
	}
	return 0, true
}

// isLoopbackListen reports whether a listen address binds loopback only
// (an empty host binds every interface).
func isLoopbackListen(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	return err == nil && host != "" && status.IsLoopbackHost(host)
}

// hostPortValue is a TCP listen address: host:port with an IP address or
// localhost as host (or none, for every interface).
type hostPortValue struct{ s *string }

func (v hostPortValue) String() string {
	if v.s == nil {
		return ""
	}
	return *v.s
}

func (v hostPortValue) Set(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("want host:port such as 127.0.0.1:9102")
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return fmt.Errorf("port %q is not a number from 0 to 65535", port)
	}
	if host != "" && host != "localhost" && net.ParseIP(host) == nil {
		return fmt.Errorf("host %q is not an IP address or localhost", host)
	}
	*v.s = s
	return nil
}

// observers are a node's running metrics and status servers.
type observers struct {
	log     *slog.Logger
	servers []*http.Server
	lns     []net.Listener
	page    *status.Server // nil without -status
}

// open listens on the configured addresses, so that a taken port fails
// the command at start, and prints where each endpoint is to w.
func (o *observeFlags) open(src status.Source, w io.Writer, log *slog.Logger) (*observers, error) {
	ob := &observers{log: log}
	if o.metrics != "" {
		if err := ob.listen(o.metrics, metrics.Handler(metrics.NewRegistry(src)), "metrics", "/metrics", w); err != nil {
			return nil, err
		}
	}
	if o.status != "" {
		ob.page = status.NewServer(status.ServerConfig{Source: src, Remote: o.statusRemote, Logger: log})
		if err := ob.listen(o.status, ob.page.Handler(), "status page", "/", w); err != nil {
			ob.close()
			return nil, err
		}
	}
	return ob, nil
}

func (ob *observers) listen(addr string, h http.Handler, what, path string, w io.Writer) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	ob.lns = append(ob.lns, ln)
	ob.servers = append(ob.servers, &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second})
	url := "http://" + ln.Addr().String() + path
	fmt.Fprintf(w, "%s: %s\n", what, url)
	ob.log.Info("serving "+what, "url", url)
	return nil
}

func (ob *observers) close() {
	for _, ln := range ob.lns {
		ln.Close()
	}
}

// run runs main until it returns; while it runs, it serves the endpoints
// and runs each of extra (which return when their context ends). It
// returns main's error once everything it started has stopped.
func (ob *observers) run(ctx context.Context, main func(context.Context) error, extra ...func(context.Context) error) error {
	if len(ob.servers) == 0 {
		return main(ctx)
	}
	bg, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	if ob.page != nil {
		extra = append(extra, ob.page.Run)
	}
	for _, f := range extra {
		wg.Add(1)
		go func() { defer wg.Done(); f(bg) }()
	}
	for i, srv := range ob.servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := srv.Serve(ob.lns[i]); err != nil && !errors.Is(err, http.ErrServerClosed) {
				ob.log.Error("endpoint stopped", "err", err)
			}
		}()
	}
	err := main(ctx)
	cancel()
	for _, srv := range ob.servers {
		sctx, stop := context.WithTimeout(context.Background(), 2*time.Second)
		if srv.Shutdown(sctx) != nil {
			srv.Close()
		}
		stop()
	}
	wg.Wait()
	return err
}
