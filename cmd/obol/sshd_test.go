package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
)

// sshFixture is a real sshd on a loopback port and the OpenSSH client
// settings that log in to it through a SOCKS proxy, with nc as the
// ProxyCommand. The client trusts the fixture's host key for every host
// name, so ssh checks that it reached this sshd whatever name it dials.
type sshFixture struct {
	addr       string // sshd's host:port on loopback
	ssh, nc    string // the client programs
	key        string // the user key sshd accepts
	knownHosts string // the host key, for any host name
	user       string
}

// startSSHD runs sshd on a loopback port with host and user keys made in a
// temporary directory, accepting the user key for the current user. It
// skips the test when ssh, ssh-keygen, sshd or nc is not installed.
func startSSHD(t *testing.T) *sshFixture {
	t.Helper()
	f := &sshFixture{ssh: needTool(t, "ssh"), nc: needTool(t, "nc")}
	keygen := needTool(t, "ssh-keygen")
	sshd := needTool(t, "sshd", "/usr/sbin/sshd")
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	f.user = me.Username
	dir := t.TempDir()
	for _, k := range []string{"host_key", "user_key"} {
		if out, err := exec.Command(keygen, "-q", "-t", "ed25519", "-N", "", "-f", filepath.Join(dir, k)).CombinedOutput(); err != nil {
			t.Fatalf("ssh-keygen: %v\n%s", err, out)
		}
	}
	f.key = filepath.Join(dir, "user_key")
	f.knownHosts = filepath.Join(dir, "known_hosts")
	writeFile(t, filepath.Join(dir, "authorized_keys"), readFile(t, f.key+".pub"))
	writeFile(t, f.knownHosts, append([]byte("* "), readFile(t, filepath.Join(dir, "host_key.pub"))...))
	f.addr = freeLoopbackAddr(t)
	_, port, _ := net.SplitHostPort(f.addr)
	config := filepath.Join(dir, "sshd_config")
	writeFile(t, config, []byte(strings.Join([]string{
		"Port " + port, "ListenAddress 127.0.0.1",
		"HostKey " + filepath.Join(dir, "host_key"),
		"AuthorizedKeysFile " + filepath.Join(dir, "authorized_keys"),
		"PidFile " + filepath.Join(dir, "sshd.pid"),
		"StrictModes no", "PasswordAuthentication no", "KbdInteractiveAuthentication no",
		"UsePAM no", "PermitRootLogin prohibit-password", "",
	}, "\n")))
	os.MkdirAll("/run/sshd", 0o755) // privilege separation directory
	cmd := exec.Command(sshd, "-D", "-e", "-f", config)
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("sshd:\n%s", stderr.String())
		}
	})
	waitFor(t, "sshd to listen", func() bool {
		c, err := net.Dial("tcp", f.addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return f
}

// command is ssh running remote on host:port, reaching it through the
// SOCKS proxy at socksAddr with `nc -X 5`, which leaves the name to the
// proxy. ssh gives up on a connection that has stalled for 15 s (nc does
// not pass on an EOF from the proxy while ssh still writes).
func (f *sshFixture) command(ctx context.Context, socksAddr, host, port, remote string) *exec.Cmd {
	return exec.CommandContext(ctx, f.ssh, "-F", "/dev/null", "-i", f.key, "-p", port,
		"-o", "StrictHostKeyChecking=yes", "-o", "UserKnownHostsFile="+f.knownHosts,
		"-o", "BatchMode=yes", "-o", "LogLevel=ERROR",
		"-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=3",
		"-o", fmt.Sprintf("ProxyCommand=%s -X 5 -x %s %%h %%p", f.nc, socksAddr),
		f.user+"@"+host, remote)
}

// freeLoopbackAddr returns a 127.0.0.1 address with a port that was free a
// moment ago, for a program that picks no port of its own.
func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func writeFile(t *testing.T, path string, content []byte) {
	t.Helper()
	if err := os.WriteFile(path, content, 0o600); err != nil {
		t.Fatal(err)
	}
}
