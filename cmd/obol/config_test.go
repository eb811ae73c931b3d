package main

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/obolnet/obol/descriptor"
)

// writeConfig writes a config file into a fresh directory.
func writeConfig(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "relay.yaml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestRelayConfigRefused is a table of bad config files: each is refused
// at start with a usage error naming the file, the line, the key, the
// value and why.
func TestRelayConfigRefused(t *testing.T) {
	for _, tt := range []struct {
		name, body string
		want       []string // all in the message
	}{
		{"unknown key", "data-dir: /x\nbandwith: 10MiB\n", []string{"relay.yaml:2", `unknown key "bandwith"`, "known keys:", "bandwidth"}},
		{"bad bandwidth", "bandwidth: 0\n", []string{"relay.yaml:1", "key bandwidth", `invalid value "0"`, "more than 0"}},
		{"bad unit", "bandwidth: 10MB\n", []string{"key bandwidth", `"10MB"`, "10MiB"}},
		{"bad duration", "lifetime: forever\n", []string{"key lifetime", `"forever"`, "not a duration"}},
		{"lifetime too long", "lifetime: 150h\n", []string{"key lifetime", `"150h"`, "want"}},
		{"republish over half the lifetime", "lifetime: 1h\nrepublish: 45m\n", []string{"key republish (", "relay.yaml:2)", `"45m0s"`, "at most half of -lifetime"}},
		{"unknown role", "roles: [guard, exitt]\n", []string{"key roles", `"guard,exitt"`, `unknown role "exitt"`}},
		{"bad listen", "listen: [/ip4/0.0.0.0/tcp/7400, 0.0.0.0:7400]\n", []string{"relay.yaml:1", "key listen", `"0.0.0.0:7400"`, "not a multiaddr"}},
		{"bootstrap without peer ID", "bootstrap: /ip4/1.2.3.4/tcp/7400\n", []string{"key bootstrap", "does not end in /p2p/PEER-ID"}},
		{"bad exit rule", "roles: exit\nexit-policy: [\"allow *:80\"]\n", []string{"relay.yaml:2", "key exit-policy", `"allow *:80"`}},
		{"exit policy without exit role", "exit-policy: [\"accept *:80\"]\n", []string{"key exit-policy (", "not an exit"}},
		{"bad log level", "log-level: loud\n", []string{"key log-level", `"loud"`, "debug, info, warn or error"}},
		{"bad log format", "log-format: xml\n", []string{"key log-format", "text, json"}},
		{"status off loopback", "status: 0.0.0.0:9102\n", []string{"key status (", `"0.0.0.0:9102"`, "loopback"}},
		{"status not host:port", "status: 9102\n", []string{"key status", `"9102"`, "host:port"}},
		{"metrics host name", "metrics: example.com:9101\n", []string{"key metrics", "not an IP address"}},
		{"same status and metrics", "metrics: 127.0.0.1:9101\nstatus: 127.0.0.1:9101\n", []string{"key status", "must differ"}},
		{"list for a single value", "data-dir: [/a, /b]\n", []string{"relay.yaml:1", "key data-dir takes one value"}},
		{"mapping as value", "bandwidth:\n  value: 10MiB\n", []string{"key bandwidth wants a value", "not a mapping"}},
		{"no value", "data-dir:\n", []string{"key data-dir has no value"}},
		{"twice", "bandwidth: 1MiB\nbandwidth: 2MiB\n", []string{"relay.yaml:2", "given twice"}},
		{"not a mapping", "- data-dir\n", []string{"relay.yaml:1", "mapping"}},
		{"not YAML", "data-dir: [\n", []string{"not valid YAML"}},
		{"two documents", "bandwidth: 1MiB\n---\nbandwidth: 2MiB\n", []string{"one YAML document"}},
		{"config in config", "config: other.yaml\n", []string{`unknown key "config"`}},
		{"price without a mint", "price-per-mib: 2sat\n", []string{"relay.yaml:1", "key price-per-mib", "give -mint"}},
		{"mint not a URL", "mint: mint.example\n", []string{"key mint", `"mint.example"`, "http(s) URL"}},
		{"bad price", "mint: http://127.0.0.1:3338\nprice-per-mib: 2btc\n", []string{"relay.yaml:2", "key price-per-mib", `"2btc"`, "2sat"}},
		{"paid relay charging nothing", "mint: http://127.0.0.1:3338\nprice-per-mib: 0\nprice-per-circuit: 0\n", []string{"key price-per-mib", "charges nothing"}},
		{"grace too short", "mint: http://127.0.0.1:3338\ngrace: 10ms\n", []string{"key grace", `"10ms"`, "want 1s to 1h0m0s"}},
		{"not a boolean", "status: 127.0.0.1:9102\nstatus-remote: maybe\n", []string{"relay.yaml:2", "key status-remote", `"maybe"`, "want true or false"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			_, code, ok := parseRelayFlags([]string{"--config", writeConfig(t, tt.body)}, &stderr)
			if ok || code != exitUsage {
				t.Fatalf("accepted (ok %v, code %d); stderr:\n%s", ok, code, stderr.String())
			}
			msg := stderr.String()
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("message %q lacks %q", msg, w)
				}
			}
		})
	}
}

// TestRelayConfigMissingFile checks that a config file that cannot be
// read stops the command.
func TestRelayConfigMissingFile(t *testing.T) {
	var stderr bytes.Buffer
	_, code, ok := parseRelayFlags([]string{"--config", filepath.Join(t.TempDir(), "none.yaml")}, &stderr)
	if ok || code != exitUsage || !strings.Contains(stderr.String(), "none.yaml") {
		t.Fatalf("ok %v, code %d, stderr %q", ok, code, stderr.String())
	}
}

// TestRelayConfigFlagsOverride checks that values come from the file
// unless a flag gives them, and that a flag replaces a whole list.
func TestRelayConfigFlagsOverride(t *testing.T) {
	path := writeConfig(t, `
data-dir: /var/lib/obol
listen: [/ip4/0.0.0.0/tcp/1, /ip4/0.0.0.0/udp/1/quic-v1]
roles: [guard, exit]
exit-policy: ["reject *:25", "accept *:80,443"]
bandwidth: 10MiB
lifetime: 2h
republish: 20m
log-format: json
status-remote: yes
metrics: 127.0.0.1:9101
status: 127.0.0.1:9102
`)
	o, code, ok := parseRelayFlags([]string{"--config", path, "--listen", "/ip4/127.0.0.1/tcp/9", "--lifetime", "4h", "--status", "127.0.0.1:9200"}, os.Stderr)
	if !ok {
		t.Fatalf("refused with %d", code)
	}
	c := o.cfg
	switch {
	case c.DataDir != "/var/lib/obol":
		t.Errorf("data dir %q", c.DataDir)
	case len(c.Listen) != 1 || c.Listen[0] != "/ip4/127.0.0.1/tcp/9":
		t.Errorf("listen %v, want the flag's only", c.Listen)
	case c.Roles != descriptor.RoleRelay|descriptor.RoleGuard|descriptor.RoleExit:
		t.Errorf("roles %v", c.Roles)
	case len(c.ExitPolicy) != 2 || c.ExitPolicy[1] != "accept *:80,443":
		t.Errorf("exit policy %q", c.ExitPolicy)
	case c.Bandwidth != 10<<20 || c.Lifetime != 4*time.Hour || c.Republish != 20*time.Minute:
		t.Errorf("bandwidth %d, lifetime %v, republish %v", c.Bandwidth, c.Lifetime, c.Republish)
	case o.log.format != "json":
		t.Errorf("log format %q", o.log.format)
	case o.obs.metrics != "127.0.0.1:9101" || o.obs.status != "127.0.0.1:9200" || !o.obs.statusRemote:
		t.Errorf("observers %+v", o.obs)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("configuration from the file does not validate: %v", err)
	}
}

// TestConfigHomeDirectory checks that "~/" in a value is the home
// directory, as a shell expands it in a flag.
func TestConfigHomeDirectory(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	o, _, ok := parseRelayFlags([]string{"--config", writeConfig(t, "data-dir: ~/obol\n")}, os.Stderr)
	if !ok || o.cfg.DataDir != filepath.Join(home, "obol") {
		t.Fatalf("data dir %q, want %s", o.cfg.DataDir, filepath.Join(home, "obol"))
	}
}

// TestExampleConfigs checks that the documented example of each command
// is accepted by that command as it is shipped.
func TestExampleConfigs(t *testing.T) {
	dir := filepath.Join("..", "..", "docs", "examples")
	var stderr bytes.Buffer
	o, code, ok := parseRelayFlags([]string{"--config", filepath.Join(dir, "relay.yaml")}, &stderr)
	if !ok {
		t.Fatalf("relay.yaml refused (%d):\n%s", code, stderr.String())
	}
	if err := o.cfg.Validate(); err != nil {
		t.Fatalf("relay.yaml: %v", err)
	}
	if _, code, ok := proxyFlags([]string{"--config", filepath.Join(dir, "proxy.yaml")}, &stderr); !ok {
		t.Fatalf("proxy.yaml refused (%d):\n%s", code, stderr.String())
	}
	if _, code, ok := serveFlags([]string{"--config", filepath.Join(dir, "serve.yaml")}, &stderr); !ok {
		t.Fatalf("serve.yaml refused (%d):\n%s", code, stderr.String())
	}
	// The commented payment keys are accepted once uncommented.
	pay := []string{"mint", "price-per-mib", "price-per-circuit", "prepay", "free", "grace", "settle-after", "direct-mint-connection-unsafe", "wallet-dir", "budget"}
	for name, parse := range map[string]func(path string) bool{
		"relay.yaml": func(path string) bool {
			o, _, ok := parseRelayFlags([]string{"--config", path}, &stderr)
			return ok && o.cfg.Payment != nil && o.cfg.Payment.PerMiB == 1000
		},
		"proxy.yaml": func(path string) bool {
			o, _, ok := proxyFlags([]string{"--config", path}, &stderr)
			return ok && o.pay.mint == "https://mint.example" && o.pay.budget == 1000_000
		},
		"serve.yaml": func(path string) bool {
			o, _, ok := serveFlags([]string{"--config", path}, &stderr)
			return ok && o.pay.mint == "https://mint.example"
		},
	} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		var lines []string
		for _, l := range strings.Split(string(b), "\n") {
			key, _, _ := strings.Cut(strings.TrimPrefix(l, "# "), ":")
			if strings.HasPrefix(l, "# ") && slices.Contains(pay, key) {
				l = strings.TrimPrefix(l, "# ")
			}
			lines = append(lines, l)
		}
		path := filepath.Join(t.TempDir(), name)
		os.WriteFile(path, []byte(strings.Join(lines, "\n")), 0o600)
		stderr.Reset()
		if !parse(path) {
			t.Errorf("%s with its payment keys uncommented refused or misread:\n%s", name, stderr.String())
		}
	}
}
