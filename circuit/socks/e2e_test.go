package socks

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/proxy"
)

const e2eBody = "obol end-to-end body\n"

// webServer serves e2eBody on loopback and returns its port.
func webServer(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, e2eBody)
	}))
	t.Cleanup(srv.Close)
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	return port
}

// needCurl skips when curl is missing on a developer machine; under CI
// (CI set) a missing curl fails, since the test command installs it.
func needCurl(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("curl")
	if err == nil {
		return path
	}
	if os.Getenv("CI") == "" {
		t.Skip("curl not installed")
	}
	t.Fatalf("curl not installed under CI: %v", err)
	return ""
}

func runCurl(t *testing.T, curl string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	args = append([]string{"-sS", "--max-time", "20", "--noproxy", ""}, args...)
	cmd := exec.CommandContext(ctx, curl, args...)
	cmd.Env = append(os.Environ(), "ALL_PROXY=", "all_proxy=", "HTTP_PROXY=", "http_proxy=", "NO_PROXY=", "no_proxy=")
	out, err := cmd.Output()
	if err != nil {
		stderr := ""
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("curl %s: %v: %s", strings.Join(args, " "), err, stderr)
	}
	return string(out)
}

func TestCurl(t *testing.T) {
	curl := needCurl(t)
	port := webServer(t)
	d := &recordingDialer{}
	_, proxyAddr := startServer(t, Config{Dialer: d})
	byName := "http://localhost:" + port + "/"
	byIP := "http://127.0.0.1:" + port + "/"
	tests := []struct {
		name      string
		args      []string
		proto     Protocol
		wantHost  string // the name the dialer must receive, or "" for an IP
		isolation IsolationKey
	}{
		{"socks5-hostname", []string{"--socks5-hostname", proxyAddr, byName}, SOCKS5, "localhost", IsolationKey{}},
		{"socks5 resolves in curl", []string{"-4", "--socks5", proxyAddr, byName}, SOCKS5, "", IsolationKey{}},
		{"socks5 ip", []string{"--socks5-hostname", proxyAddr, byIP}, SOCKS5, "", IsolationKey{}},
		{"socks5 user", []string{"--socks5-hostname", proxyAddr, "--proxy-user", "alice:one", byName}, SOCKS5, "localhost", NewIsolationKey("alice", "one")},
		{"socks4a", []string{"--socks4a", proxyAddr, byName}, SOCKS4a, "localhost", IsolationKey{}},
		{"socks4", []string{"-4", "--socks4", proxyAddr, byName}, SOCKS4, "", IsolationKey{}},
		{"socks4a user", []string{"--socks4a", proxyAddr, "--proxy-user", "dave:", byName}, SOCKS4a, "localhost", NewIsolationKey("dave", "")},
		{"http connect", []string{"-p", "-x", "http://" + proxyAddr, byName}, HTTPConnect, "localhost", IsolationKey{}},
		{"http connect user", []string{"-p", "-x", "http://" + proxyAddr, "--proxy-user", "erin:pw", byName}, HTTPConnect, "localhost", NewIsolationKey("erin", "pw")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := runCurl(t, curl, tt.args...); got != e2eBody {
				t.Fatalf("body %q", got)
			}
			r := d.last(t)
			if r.Protocol != tt.proto || r.Host != tt.wantHost || r.Isolation != tt.isolation {
				t.Fatalf("request %+v (isolation %x), want protocol %v host %q isolation %x",
					r, r.Isolation[:4], tt.proto, tt.wantHost, tt.isolation[:4])
			}
			if tt.wantHost == "" && !r.IP.IsLoopback() {
				t.Fatalf("target %v, want a loopback IP", r.Target)
			}
		})
	}
}

// TestCurlIsolation checks that credentials, and only credentials, tell
// streams apart: the same user and password give the same key, any
// difference gives another.
func TestCurlIsolation(t *testing.T) {
	curl := needCurl(t)
	port := webServer(t)
	d := &recordingDialer{}
	_, proxyAddr := startServer(t, Config{Dialer: d})
	url := "http://localhost:" + port + "/"
	creds := []string{"alice:one", "alice:two", "bob:one", "alice:one"}
	for _, c := range creds {
		runCurl(t, curl, "--socks5-hostname", proxyAddr, "--proxy-user", c, url)
	}
	runCurl(t, curl, "--socks5-hostname", proxyAddr, url)
	rs := d.requests()
	if len(rs) != 5 {
		t.Fatalf("%d requests, want 5", len(rs))
	}
	k := func(i int) IsolationKey { return rs[i].Isolation }
	if k(0) != k(3) {
		t.Fatal("same credentials gave different keys")
	}
	if k(0) == k(1) || k(0) == k(2) || k(1) == k(2) {
		t.Fatal("different credentials share a key")
	}
	if !k(4).IsZero() || k(0).IsZero() {
		t.Fatal("only a connection without credentials has the zero key")
	}
}

func TestXNetProxySOCKS5(t *testing.T) {
	port := webServer(t)
	d := &recordingDialer{}
	_, proxyAddr := startServer(t, Config{Dialer: d})
	for _, auth := range []*proxy.Auth{nil, {User: "frank", Password: "pw"}} {
		dialer, err := proxy.SOCKS5("tcp", proxyAddr, auth, proxy.Direct)
		if err != nil {
			t.Fatal(err)
		}
		cd := dialer.(proxy.ContextDialer)
		tr := &http.Transport{DialContext: cd.DialContext, DisableKeepAlives: true}
		client := &http.Client{Transport: tr, Timeout: 20 * time.Second}
		resp, err := client.Get("http://localhost:" + port + "/")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		tr.CloseIdleConnections()
		if string(body) != e2eBody {
			t.Fatalf("body %q", body)
		}
		r := d.last(t)
		if r.Host != "localhost" {
			t.Fatalf("target %v: want the name unresolved", r.Target)
		}
		if want := (auth != nil); want == r.Isolation.IsZero() {
			t.Fatalf("auth %v: isolation %x", auth, r.Isolation)
		}
	}
}

func TestCurlIPv6(t *testing.T) {
	curl := needCurl(t)
	ln, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, e2eBody)
	}))
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	d := &recordingDialer{}
	_, proxyAddr := startServer(t, Config{Dialer: d})
	for _, mode := range []string{"--socks5", "--socks5-hostname"} {
		if got := runCurl(t, curl, mode, proxyAddr, "http://"+ln.Addr().String()+"/"); got != e2eBody {
			t.Fatalf("%s: body %q", mode, got)
		}
		if r := d.last(t); !r.IP.Is6() || r.Host != "" {
			t.Fatalf("%s: target %+v, want an IPv6 address", mode, r.Target)
		}
	}
}
