package main

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/obolnet/obol/circuit/link"
	"github.com/obolnet/obol/descriptor"
	"github.com/obolnet/obol/dht"
	"github.com/obolnet/obol/internal/node"
	"github.com/obolnet/obol/payment"
)

// runVersion prints the build's version and commit and the protocol
// versions it speaks, so operators can tell what a node runs.
func runVersion(_ context.Context, args []string, e env) int {
	if len(args) > 0 {
		fmt.Fprintf(e.stderr, "obol version: takes no arguments\n")
		return exitUsage
	}
	printVersion(e.stdout)
	return exitOK
}

func printVersion(w io.Writer) {
	version, commit := buildVersion()
	fmt.Fprintf(w, "obol %s\n", version)
	fmt.Fprintf(w, "commit      %s\n", commit)
	fmt.Fprintf(w, "go          %s %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	fmt.Fprintf(w, "protocols   link %s, circuit %d, relay descriptor %d, hidden-service descriptor %d, payment wire %d, dht %s\n",
		link.Protocol, node.ProtocolVersion, descriptor.Version, descriptor.HSVersion, payment.WireVersion, dht.ProtocolPrefix)
}

// buildVersion reads the module version and the VCS commit that the Go
// toolchain stamped into the binary; a build outside a checkout has none.
func buildVersion() (version, commit string) {
	version, commit = "(devel)", "unknown"
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return version, commit
	}
	if v := bi.Main.Version; v != "" {
		version = v
	}
	modified := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			commit = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if modified && commit != "unknown" {
		commit += " (modified)"
	}
	return version, commit
}
