package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/obolnet/obol/circuit/client"
	"github.com/obolnet/obol/hidden"
	"github.com/obolnet/obol/payment/mint"
)

// mintDirName is the name of the mint's default data directory under
// ~/.obol.
const mintDirName = "mint"

// mintSeedFile holds the mint's seed in its directory, next to its
// journal: hex, created once with mode 0600.
const mintSeedFile = "mint.seed"

// defaultMintListen is loopback: the test mint pays every invoice itself,
// so anyone who reaches it can mint ecash.
const defaultMintListen = "127.0.0.1:3338"

// mintUnits are the units the test mint offers, with the order of their
// keysets (amounts 2^0 … 2^(order-1)).
var mintUnits = map[string]int{"sat": 32, "msat": 42}

type mintOptions struct {
	listen  string
	dataDir string
	seed    []byte // from -seed-file; nil: the data directory's
	units   []string
	feePPK  int
	log     logFlags
	// the mint as a hidden service (--hidden-service)
	hidden          bool
	bootstrap       []peer.AddrInfo
	allowSameSubnet bool
	minGuardAge     time.Duration
	minExitAge      time.Duration
	timeout         time.Duration
}

// mintServiceDir holds, in the mint's data directory, the identity of the
// mint's hidden service (its address) and that service's relay cache and
// guards.
const mintServiceDir = "hidden-service"

func mintFlags(args []string, w io.Writer) (mintOptions, int, bool) {
	o := mintOptions{listen: defaultMintListen, units: []string{"sat", "msat"}, timeout: 60 * time.Second}
	if d := defaultDataDir(); d != "" {
		o.dataDir = filepath.Join(d, mintDirName)
	}
	fs := newFlagSet("mint", "[flags]", w)
	fs.Var(hostPortValue{&o.listen}, "listen", "`host:port` to serve the mint's HTTP API on")
	fs.StringVar(&o.dataDir, "data-dir", o.dataDir, "`directory` for the mint's journal and seed (created 0700; the seed file 0600)")
	seedFile := fs.String("seed-file", "", "`file` holding the mint's seed in hex (default: one generated once in the data directory)")
	fs.Var(unitsValue{&o.units}, "units", "comma-separated `units` to offer: sat, msat")
	fs.Var(intValue{&o.feePPK, 0, 999}, "fee-ppk", "input fee of every keyset, in `parts per thousand` of a unit per proof")
	fs.BoolVar(&o.hidden, "hidden-service", false, "also offer the mint as a hidden service, so that clients and relays reach it through circuits that end at the mint (needs --bootstrap)")
	fs.Var(bootstrapValue{&o.bootstrap}, "bootstrap", "comma-separated /p2p/ `multiaddrs` of relays to join through, with --hidden-service")
	fs.BoolVar(&o.allowSameSubnet, "allow-same-subnet", false, "with --hidden-service, let relays of one /16 share a path (local test networks on loopback only)")
	fs.DurationVar(&o.minGuardAge, "min-guard-age", client.DefaultMinGuardAge, "with --hidden-service, how long a relay must have been seen before it may be a guard; 0 for local test networks")
	fs.DurationVar(&o.minExitAge, "min-exit-age", client.DefaultMinExitAge, "with --hidden-service, how long a relay must have been seen before it may be an exit; 0 for local test networks")
	fs.Var(durationValue{&o.timeout, time.Second, time.Hour}, "timeout", "with --hidden-service, give up joining and publishing after this `duration`")
	o.log.register(fs, slog.LevelInfo)
	src, code, ok := parseWithConfig(fs, args)
	if !ok {
		return o, code, false
	}
	if o.dataDir == "" {
		return o, src.invalid(fs, "data-dir", "", "no home directory to default to; give a directory"), false
	}
	if o.hidden && len(o.bootstrap) == 0 {
		return o, usageError(fs, "bootstrap", "", "a hidden service joins the network through at least one relay"), false
	}
	if !o.hidden && len(o.bootstrap) > 0 {
		return o, usageError(fs, "bootstrap", "", "only a mint offered as a hidden service joins the network; add --hidden-service"), false
	}
	if *seedFile != "" {
		var err error
		if o.seed, err = readSeed(*seedFile); err != nil {
			return o, src.invalid(fs, "seed-file", *seedFile, err.Error()), false
		}
	}
	return o, 0, true
}

// runMint is `obol mint`: the test mint over HTTP until interrupted.
func runMint(ctx context.Context, args []string, e env) int {
	o, code, ok := mintFlags(args, e.stderr)
	if !ok {
		return code
	}
	log := o.log.logger(e.stderr)
	dir := o.dataDir
	if err := prepareDir(dir); err != nil {
		log.Error("mint did not start", "err", err)
		return exitFail
	}
	seed := o.seed
	if seed == nil {
		var err error
		if seed, err = loadOrCreateSeed(filepath.Join(dir, mintSeedFile)); err != nil {
			log.Error("mint did not start", "err", err)
			return exitFail
		}
	}
	cfg := mint.Config{Seed: seed, Dir: dir, Now: e.now}
	for _, u := range o.units {
		cfg.Units = append(cfg.Units, mint.UnitConfig{Unit: u, Order: mintUnits[u], InputFeePPK: uint64(o.feePPK)})
	}
	m, err := mint.Open(cfg)
	if err != nil {
		log.Error("mint did not start", "err", err)
		return exitFail
	}
	defer m.Close()
	return serveMint(ctx, m, o, e, log)
}

// serveMint listens, says where, and serves until ctx ends.
func serveMint(ctx context.Context, m *mint.Mint, o mintOptions, e env, log *slog.Logger) int {
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		log.Error("mint did not start", "err", err)
		return exitFail
	}
	log.Warn("this is a test mint: its Lightning backend is fake and marks every invoice paid, so its ecash is backed by nothing; use it for local networks and tests only")
	if !isLoopbackListen(o.listen) {
		log.Warn("the mint listens beyond loopback: anyone who reaches it can mint ecash for free", "listen", o.listen)
	}
	log.Info("mint started", "data_dir", o.dataDir, "units", strings.Join(o.units, ","), "fee_ppk", o.feePPK)
	fmt.Fprintf(e.stdout, "mint URL: http://%s\n", ln.Addr())
	served := make(chan error, 1)
	go func() { served <- m.Serve(ctx, ln) }()
	if o.hidden {
		svc, err := o.startService(ctx, ln.Addr().String(), log)
		if err != nil {
			ln.Close()
			<-served
			if ctx.Err() != nil { // interrupted while joining
				return exitOK
			}
			log.Error("mint hidden service did not start", "err", err)
			return exitFail
		}
		defer svc.stop()
		fmt.Fprintf(e.stdout, "mint URL as a hidden service: %s\n", svc.url)
	}
	err = <-served
	log.Info("mint stopping")
	if err != nil {
		log.Error("mint failed", "err", err)
		return exitFail
	}
	return exitOK
}

// startService offers the mint at target as a hidden service, with the
// key kept in the data directory so that its address survives restarts.
func (o mintOptions) startService(ctx context.Context, target string, log *slog.Logger) (*mintService, error) {
	dir := filepath.Join(o.dataDir, mintServiceDir)
	key, err := hidden.LoadKey(filepath.Join(dir, serviceKeyFile))
	if err != nil {
		return nil, err
	}
	return startMintService(ctx, target, mintServiceOptions{bootstrap: o.bootstrap, dataDir: dir, key: key,
		allowSameSubnet: o.allowSameSubnet, minGuardAge: o.minGuardAge, minExitAge: o.minExitAge, timeout: o.timeout, log: log})
}

// unitsValue is a comma-separated list of units of mintUnits.
type unitsValue struct{ units *[]string }

func (unitsValue) commaList() {}

func (v unitsValue) String() string {
	if v.units == nil {
		return ""
	}
	return strings.Join(*v.units, ",")
}

func (v unitsValue) Set(s string) error {
	var units []string
	for _, u := range splitList(s) {
		if _, ok := mintUnits[u]; !ok {
			return fmt.Errorf("unknown unit %q; want a comma-separated list of sat, msat", u)
		}
		for _, prev := range units {
			if prev == u {
				return fmt.Errorf("unit %q is given twice", u)
			}
		}
		units = append(units, u)
	}
	if len(units) == 0 {
		return errors.New("want at least one unit")
	}
	*v.units = units
	return nil
}

// Seed files and data directories.

// prepareDir creates dir with mode 0700, or narrows the mode of an
// existing one that others can reach.
func prepareDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		if err := os.Chmod(dir, 0o700); err != nil {
			return fmt.Errorf("%s is open to others and cannot be fixed: %w", dir, err)
		}
	}
	return nil
}

// seedSize is the size of a generated seed.
const seedSize = 32

// loadOrCreateSeed reads the seed at path, or creates it (mode 0600) when
// there is none.
func loadOrCreateSeed(path string) ([]byte, error) {
	seed, err := readSeed(path)
	if !errors.Is(err, fs.ErrNotExist) {
		if err != nil {
			return nil, fmt.Errorf("seed file %s: %w", path, err)
		}
		return seed, nil
	}
	seed = make([]byte, seedSize)
	if _, err := rand.Read(seed); err != nil {
		return nil, fmt.Errorf("seed: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create seed: %w", err)
	}
	_, err = f.WriteString(hex.EncodeToString(seed) + "\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("write seed %s: %w", path, err)
	}
	return seed, nil
}

// readSeed reads a seed file: hex of at least 16 bytes, readable by its
// owner alone.
func readSeed(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if pe := (*fs.PathError)(nil); errors.As(err, &pe) {
		return nil, pe.Err // the caller names the file
	} else if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, errors.New("not a regular file")
	}
	if m := fi.Mode().Perm(); m&0o077 != 0 {
		return nil, fmt.Errorf("mode %04o lets others read it; run chmod 600 on it if the seed is still secret", m)
	}
	b, err := os.ReadFile(path)
	if pe := (*fs.PathError)(nil); errors.As(err, &pe) {
		return nil, pe.Err
	} else if err != nil {
		return nil, err
	}
	seed, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(seed) < 16 {
		return nil, errors.New("want hex of at least 16 bytes (e.g. from openssl rand -hex 32)")
	}
	return seed, nil
}
