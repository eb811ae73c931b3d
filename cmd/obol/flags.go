package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/obolnet/obol/descriptor"
	"github.com/obolnet/obol/pay"
)

// Every flag.Value here checks its value when it is set, so that the flag
// package reports a bad one as: invalid value "V" for flag -NAME: WHY.

// newFlagSet returns a flag set that reports errors to w and does not exit.
func newFlagSet(name, args string, w io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(w)
	fs.Usage = func() {
		fmt.Fprintf(w, "Usage: obol %s %s\n\nFlags:\n", name, args)
		fs.PrintDefaults()
	}
	return fs
}

// parse parses args and refuses positional arguments. It returns the exit
// code to use when it fails (0 for -h).
func parse(fs *flag.FlagSet, args []string) (int, bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK, false
		}
		return exitUsage, false
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "obol %s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		return exitUsage, false
	}
	return 0, true
}

// usageError reports a problem that spans flags, in the flag package's
// words, and returns the usage exit code.
func usageError(fs *flag.FlagSet, name, value, why string) int {
	fmt.Fprintf(fs.Output(), "invalid value %q for flag -%s: %s\n", value, name, why)
	return exitUsage
}

// roleNames maps the names accepted by --roles to roles.
var roleNames = map[string]descriptor.Role{
	"relay": descriptor.RoleRelay, "guard": descriptor.RoleGuard, "exit": descriptor.RoleExit,
	"intro": descriptor.RoleIntro, "rendezvous": descriptor.RoleRendezvous,
}

// rolesValue is a comma-separated role list; relay is always included.
type rolesValue struct{ r *descriptor.Role }

func (v rolesValue) String() string {
	if v.r == nil {
		return ""
	}
	return v.r.String()
}

func (v rolesValue) Set(s string) error {
	r := descriptor.RoleRelay
	for _, name := range strings.Split(s, ",") {
		role, ok := roleNames[strings.TrimSpace(name)]
		if !ok {
			return fmt.Errorf("unknown role %q; want a comma-separated list of relay, guard, exit, intro, rendezvous", name)
		}
		r |= role
	}
	*v.r = r
	return nil
}

// multiaddrsValue is a comma-separated list of multiaddrs; the flag may be
// repeated.
type multiaddrsValue struct{ addrs *[]string }

func (v multiaddrsValue) String() string {
	if v.addrs == nil {
		return ""
	}
	return strings.Join(*v.addrs, ",")
}

func (v multiaddrsValue) Set(s string) error {
	for _, a := range splitList(s) {
		if _, err := ma.NewMultiaddr(a); err != nil {
			return fmt.Errorf("%q is not a multiaddr: %v", a, err)
		}
		*v.addrs = append(*v.addrs, a)
	}
	return nil
}

// bootstrapValue is a comma-separated list of multiaddrs that end in
// /p2p/PEER-ID; the flag may be repeated.
type bootstrapValue struct{ peers *[]peer.AddrInfo }

func (v bootstrapValue) String() string {
	if v.peers == nil {
		return ""
	}
	var s []string
	for _, p := range *v.peers {
		s = append(s, p.String())
	}
	return strings.Join(s, ",")
}

func (v bootstrapValue) Set(s string) error {
	var addrs []ma.Multiaddr
	for _, a := range splitList(s) {
		m, err := ma.NewMultiaddr(a)
		if err != nil {
			return fmt.Errorf("%q is not a multiaddr: %v", a, err)
		}
		if _, err := peer.AddrInfoFromP2pAddr(m); err != nil {
			return fmt.Errorf("%q does not end in /p2p/PEER-ID, so the peer cannot be authenticated", a)
		}
		addrs = append(addrs, m)
	}
	for _, p := range *v.peers { // merge with earlier -bootstrap flags
		prev, err := peer.AddrInfoToP2pAddrs(&p)
		if err != nil {
			return err
		}
		addrs = append(prev, addrs...)
	}
	infos, err := peer.AddrInfosFromP2pAddrs(addrs...)
	if err != nil {
		return err
	}
	*v.peers = infos
	return nil
}

func splitList(s string) []string {
	var out []string
	for _, a := range strings.Split(s, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

// durationValue is a duration within [min, max].
type durationValue struct {
	d        *time.Duration
	min, max time.Duration
}

func (v durationValue) String() string {
	if v.d == nil {
		return ""
	}
	return v.d.String()
}

func (v durationValue) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("not a duration (e.g. 30m, 3h)")
	}
	if d < v.min || d > v.max {
		return fmt.Errorf("want %v to %v", v.min, v.max)
	}
	*v.d = d
	return nil
}

// intValue is an integer within [min, max].
type intValue struct {
	n        *int
	min, max int
}

func (v intValue) String() string {
	if v.n == nil {
		return ""
	}
	return strconv.Itoa(*v.n)
}

func (v intValue) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil {
		return fmt.Errorf("not an integer")
	}
	if n < v.min || n > v.max {
		return fmt.Errorf("want %d to %d", v.min, v.max)
	}
	*v.n = n
	return nil
}

// bytesValue is a positive byte count: a number, optionally followed by
// KiB, MiB or GiB.
type bytesValue struct{ n *uint64 }

func (v bytesValue) String() string {
	if v.n == nil {
		return ""
	}
	return strconv.FormatUint(*v.n, 10)
}

var byteUnits = []struct {
	suffix string
	mult   uint64
}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}}

func (v bytesValue) Set(s string) error {
	num, mult := s, uint64(1)
	for _, u := range byteUnits {
		if strings.HasSuffix(s, u.suffix) {
			num, mult = strings.TrimSuffix(s, u.suffix), u.mult
		}
	}
	n, err := strconv.ParseUint(num, 10, 64)
	if err != nil {
		return fmt.Errorf("want a byte count such as 1048576 or 10MiB")
	}
	if n == 0 || n > (1<<50)/mult {
		return fmt.Errorf("want more than 0 and at most 1PiB")
	}
	*v.n = n * mult
	return nil
}

// choiceValue is one of a fixed set of words.
type choiceValue struct {
	s       *string
	choices []string
}

func (v choiceValue) String() string {
	if v.s == nil {
		return ""
	}
	return *v.s
}

func (v choiceValue) Set(s string) error {
	for _, c := range v.choices {
		if s == c {
			*v.s = s
			return nil
		}
	}
	return fmt.Errorf("want one of %s", strings.Join(v.choices, ", "))
}

// msatValue is an amount of millisatoshi: a number of msat, or a number
// followed by "sat".
type msatValue struct{ n *uint64 }

func (v msatValue) String() string {
	if v.n == nil {
		return ""
	}
	return strconv.FormatUint(*v.n, 10)
}

// maxMsat bounds amounts to 10^15 msat (a million bitcoin-satoshi times a
// thousand): anything more is a typo.
const maxMsat = 1_000_000_000_000_000

func (v msatValue) Set(s string) error {
	num, mult := strings.TrimSuffix(s, "msat"), uint64(1)
	if num == s {
		if n, ok := strings.CutSuffix(s, "sat"); ok {
			num, mult = n, 1000
		}
	}
	n, err := strconv.ParseUint(num, 10, 64)
	if err != nil || n > maxMsat/mult {
		return fmt.Errorf("want an amount such as 1500 (msat), 1500msat or 2sat, at most %d msat", uint64(maxMsat))
	}
	*v.n = n * mult
	return nil
}

// mintValue is a mint's http(s) URL.
type mintValue struct{ s *string }

func (v mintValue) String() string {
	if v.s == nil {
		return ""
	}
	return *v.s
}

func (v mintValue) Set(s string) error {
	if err := pay.CheckMintURL(s); err != nil {
		return errors.New("want the mint's http(s) URL, such as http://127.0.0.1:3338")
	}
	*v.s = strings.TrimRight(s, "/")
	return nil
}
