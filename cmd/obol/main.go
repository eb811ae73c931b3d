// Command obol runs obol's processes: a relay, a client listing of the
// relays the DHT knows, and a whole local network on loopback.
//
// Each subcommand parses its own flags; run "obol help" for the list.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// Exit codes.
const (
	exitOK    = 0
	exitFail  = 1 // the command ran and failed
	exitUsage = 2 // bad flags or arguments
)

// env is what a command may touch besides its flags, so tests can run
// commands in-process.
type env struct {
	stdout, stderr io.Writer
	now            func() time.Time
}

// command is one subcommand.
type command struct {
	name, args, summary string
	run                 func(ctx context.Context, args []string, e env) int
}

func commands() []command {
	return []command{
		{"relay", "[flags]", "run a relay: join the DHT, publish its descriptor, keep it published", runRelay},
		{"relays", "--bootstrap ADDRS [flags]", "take the view of the network from relays as a client and list its relays", runRelays},
		{"proxy", "--bootstrap ADDRS [flags]", "run a SOCKS5/SOCKS4a proxy that sends connections through circuits", runProxy},
		{"serve", "--bootstrap ADDRS --target HOST:PORT [flags]", "run a hidden service (.obol address) that forwards to a local server", runServe},
		{"testnet", "[--relays N] [--check]", "run a whole network on loopback and show what a client discovers", runTestnet},
		{"status", "[--addr HOST:PORT]", "print a running node's status (its -status endpoint)", runStatus},
		{"bench", "[--quick] [--out DIR]", "measure a local network against direct TCP and a plain forwarding chain", runBench},
		{"mint", "[--listen HOST:PORT] [flags]", "run a test Cashu mint whose fake Lightning backend pays every invoice", runMint},
		{"soak", "[--relays N] [--duration D]", "run paid relays and proxies as processes under traffic and churn; report", runSoak},
		{"sim", "[--relays N] [--clients M] [flags]", "simulate a large network of real nodes on simulated links in virtual time; report", runSim},
		{"wallet", "COMMAND [ARGS] [flags]", "keep ecash of one mint: balance, topup, send, receive, withdraw, history", runWallet},
		{"version", "", "print the version, the commit and the protocol versions", runVersion},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], env{stdout: os.Stdout, stderr: os.Stderr, now: time.Now})
	stop()
	os.Exit(code)
}

// run dispatches to the subcommand named by args[0].
func run(ctx context.Context, args []string, e env) int {
	if len(args) == 0 {
		usage(e.stderr)
		return exitUsage
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		usage(e.stdout)
		return exitOK
	case "-version", "--version":
		printVersion(e.stdout)
		return exitOK
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(ctx, args[1:], e)
		}
	}
	fmt.Fprintf(e.stderr, "obol: unknown command %q\n\n", args[0])
	usage(e.stderr)
	return exitUsage
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "obol is a Tor-style anonymity network without a directory authority.\n\nUsage:\n")
	for _, c := range commands() {
		fmt.Fprintf(w, "  obol %-8s %-28s %s\n", c.name, c.args, c.summary)
	}
	fmt.Fprintf(w, "  obol help\n\nRun \"obol COMMAND -h\" for a command's flags.\n")
}
