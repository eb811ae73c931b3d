package bench

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// socksAddr is where the proxy listens, in the client's namespace.
const socksAddr = "127.0.0.1:9050"

// curlResult is what curl reports of one fetch.
type curlResult struct {
	ttfb  time.Duration // from curl's start to the first byte of the answer
	total time.Duration
	bytes int64
}

// rateMBps is the transfer's rate from its first byte to its last.
func (r curlResult) rateMBps() float64 {
	return float64(r.bytes) / (r.total - r.ttfb).Seconds() / 1e6
}

// curl fetches size bytes from the server with curl in the client's
// namespace: through the proxy's SOCKS5 port with user as the user name
// (the proxy's isolation key), or directly.
func (b *nsRun) curl(ctx context.Context, user string, size int, direct bool) (curlResult, error) {
	return b.curlPort(ctx, serverPort, user, size, direct)
}

// curlPort is curl of the server at port.
func (b *nsRun) curlPort(ctx context.Context, port int, user string, size int, direct bool) (curlResult, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	url := fmt.Sprintf("http://%s:%d/bytes/%d", b.net.Nodes()[nodeServer].Addr, port, size)
	args := []string{"-sS", "-o", "/dev/null", "--max-time", "240",
		"-w", "%{time_starttransfer} %{time_total} %{size_download} %{http_code}"}
	if !direct {
		args = append(args, "--proxy", fmt.Sprintf("socks5h://%s:x@%s", user, socksAddr))
	}
	out, err := b.net.Command(ctx, nodeClient, "curl", append(args, url)...).CombinedOutput()
	if err != nil {
		return curlResult{}, fmt.Errorf("bench: curl: %v: %s", err, strings.TrimSpace(string(out)))
	}
	return parseCurl(string(out), size)
}

// parseCurl reads curl's -w line: first byte and total in seconds, bytes
// and the HTTP status.
func parseCurl(out string, size int) (curlResult, error) {
	f := strings.Fields(out)
	if len(f) != 4 {
		return curlResult{}, fmt.Errorf("bench: curl printed %q", out)
	}
	ttfb, err1 := strconv.ParseFloat(f[0], 64)
	total, err2 := strconv.ParseFloat(f[1], 64)
	n, err3 := strconv.ParseInt(f[2], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return curlResult{}, fmt.Errorf("bench: curl printed %q", out)
	}
	if f[3] != "200" || n != int64(size) {
		return curlResult{}, fmt.Errorf("bench: curl got status %s and %d bytes, want 200 and %d", f[3], n, size)
	}
	sec := func(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }
	return curlResult{ttfb: sec(ttfb), total: sec(total), bytes: n}, nil
}

// measureTTFB times curl's first byte of a 1 KiB answer, in turn: on a
// fresh circuit (a new user name), as a new stream on an existing
// circuit, the same from a server that does not take TCP Fast Open, and
// directly.
func (b *nsRun) measureTTFB(ctx context.Context) error {
	const size = 1024
	for _, port := range []int{serverPort, serverPortPlain} {
		// The exit's first connection to each server: it gets the
		// Fast Open cookie of the one that gives them.
		if _, err := b.curlPort(ctx, port, "existing", size, false); err != nil {
			return err
		}
	}
	var fresh, existing, plain, direct []float64
	for i := range b.cfg.TTFBSamples {
		for _, sc := range []struct {
			what, user string
			port       int
			direct     bool
			into       *[]float64
		}{
			{"fresh circuit", fmt.Sprintf("fresh-%d", i), serverPort, false, &fresh},
			{"existing circuit", "existing", serverPort, false, &existing},
			{"existing circuit, no Fast Open", "existing", serverPortPlain, false, &plain},
			{"direct TCP", "", serverPort, true, &direct},
		} {
			b.step(fmt.Sprintf("first byte: %s (%d/%d)", sc.what, i+1, b.cfg.TTFBSamples))
			r, err := b.curlPort(ctx, sc.port, sc.user, size, sc.direct)
			if err != nil {
				return fmt.Errorf("bench: first byte, %s: %w", sc.what, err)
			}
			*sc.into = append(*sc.into, ms(r.ttfb))
		}
	}
	// Each fresh sample should have left a circuit of its own.
	if s, err := b.status(ctx, nodeClient); err == nil {
		b.rep.ProxyCircuits = s.Traffic.CircuitsOpen
	}
	b.rep.TTFB = []Series{
		newSeries(NetnsFresh, false, fresh),
		newSeries(NetnsExisting, false, existing),
		newSeries(NetnsExistingPlain, false, plain),
		newSeries(NetnsDirect, true, direct),
	}
	return nil
}

// Names of the namespace run's series.
const (
	NetnsFresh    = "curl via SOCKS, fresh circuit (new user name)"
	NetnsExisting = "curl via SOCKS, new stream on an existing circuit"
	// NetnsExistingPlain is NetnsExisting from a server that does not
	// take TCP Fast Open: the exit's handshake with it is on the path.
	NetnsExistingPlain = "curl via SOCKS, new stream on an existing circuit, server without TCP Fast Open"
	NetnsDirect        = "curl, direct TCP over the same path delay"
	NetnsBulk          = "curl via SOCKS, circuit ×1"
	NetnsBulkTCP       = "curl, direct TCP ×1 over the same path delay"
	// NetnsBulkTCPWide is direct TCP with the server's send buffer
	// allowed to grow to 32 MiB.
	NetnsBulkTCPWide = "curl, direct TCP ×1, server's send buffer up to 32 MiB"
)
