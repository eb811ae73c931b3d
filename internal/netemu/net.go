package netemu

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
)

// Config describes a Net.
type Config struct {
	// Prefix starts every namespace's and device's name; make it unique to
	// the run (e.g. "ob" and the process ID). At most 9 characters, so that
	// device names fit the kernel's 15.
	Prefix string
	// Nodes names the nodes, one namespace each (at most 150).
	Nodes []string
	// Delay is each link's one-way delay; nil is no delay.
	Delay DelayFunc
	// Queue is how many packets a link holds (0: DefaultQueue).
	Queue int
	// Base is the first octet of every node's address (0: 10). libp2p's
	// hole punching works only between public addresses, so a test of it
	// takes a public range, used only inside the Net.
	Base byte
}

// Node is one node of a Net.
type Node struct {
	Name string     // as in Config.Nodes
	NS   string     // its network namespace
	Dev  string     // its TUN device, in NS
	Addr netip.Addr // its address, on Dev
}

// Net is a set of network namespaces, one per node, each with a TUN
// device as its only way out, linked by a Forwarder. Node i has the
// address 10.(100+i).0.1 (Config.Base in place of 10), a /16 of its own,
// and routes 10.0.0.0/8 (the Base's /8) through its device; nothing else
// is routed, so no traffic leaves the Net.
//
// Create builds it, Run forwards, Close removes it.
type Net struct {
	nodes []Node
	fwd   *Forwarder

	mu      sync.Mutex // guards the fields below
	devs    []*os.File // closed by Run, or by Close if Run never ran
	running bool
	closed  bool
}

// devQueue is each device's queue towards the Forwarder, in packets. The
// kernel drops what overflows it, unseen by the Forwarder, and its
// default of 500 overflows at once when a TCP window of a long link
// arrives in a burst.
const devQueue = 16384

// firstOctet2 is the second octet of node 0's address.
const firstOctet2 = 100

// Create makes a namespace and a TUN device per node and addresses them.
// On error it removes whatever it made.
func Create(cfg Config) (*Net, error) {
	if len(cfg.Prefix) == 0 || len(cfg.Prefix) > 9 || len(cfg.Nodes) == 0 || len(cfg.Nodes) > 150 {
		return nil, errors.New("netemu: want a prefix of 1 to 9 characters and 1 to 150 nodes")
	}
	delay := cfg.Delay
	if delay == nil {
		delay = Constant(0)
	}
	base := cfg.Base
	if base == 0 {
		base = 10
	}
	n := &Net{fwd: NewForwarder(delay, cfg.Queue)}
	for i, name := range cfg.Nodes {
		nd := Node{Name: name, NS: fmt.Sprintf("%s-%s", cfg.Prefix, name), Dev: fmt.Sprintf("%st%d", cfg.Prefix, i),
			Addr: netip.AddrFrom4([4]byte{base, byte(firstOctet2 + i), 0, 1})}
		if err := n.addNode(nd, base); err != nil {
			n.Close()
			return nil, err
		}
	}
	return n, nil
}

// addNode makes nd's namespace and device, and adds the device to the
// Forwarder; the device routes base.0.0.0/8.
func (n *Net) addNode(nd Node, base byte) error {
	if err := ip(nil, "netns", "add", nd.NS); err != nil {
		return err
	}
	n.nodes = append(n.nodes, nd)
	var dev *os.File
	err := inNetns(nd.NS, func() (err error) {
		dev, err = openTUN(nd.Dev)
		return err
	})
	if err != nil {
		return err
	}
	n.devs = append(n.devs, dev)
	n.fwd.Add(nd.Addr, dev)
	script := fmt.Sprintf("link set lo up\naddr add %s/32 dev %s\nlink set %s txqueuelen %d up\nroute add %d.0.0.0/8 dev %s\n",
		nd.Addr, nd.Dev, nd.Dev, devQueue, base, nd.Dev)
	return ip(strings.NewReader(script), "-n", nd.NS, "-batch", "-")
}

// Nodes returns the nodes, in the order of Config.Nodes.
func (n *Net) Nodes() []Node { return n.nodes }

// Stats returns the Forwarder's counts.
func (n *Net) Stats() Stats { return n.fwd.Stats() }

// Run forwards packets until ctx ends; see Forwarder.Run. It closes the
// devices when it returns; call it once.
func (n *Net) Run(ctx context.Context) error {
	n.mu.Lock()
	if n.running || n.closed {
		n.mu.Unlock()
		return errors.New("netemu: Run called twice or after Close")
	}
	n.running = true
	n.mu.Unlock()
	return n.fwd.Run(ctx)
}

// Close removes every namespace (ending Run's work first is the
// caller's) and closes the devices if Run never ran. Processes still in a
// namespace keep only their loopback. Idempotent.
func (n *Net) Close() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil
	}
	n.closed = true
	if !n.running {
		for _, d := range n.devs {
			d.Close()
		}
	}
	var errs []error
	for _, nd := range n.nodes {
		errs = append(errs, ip(nil, "netns", "del", nd.NS))
	}
	return errors.Join(errs...)
}

// Command returns a command that runs name with args in node i's
// namespace; it is killed if this process dies (a parent-death signal,
// which Linux sends when the thread that started it ends: this package
// ends none of the threads it borrows).
func (n *Net) Command(ctx context.Context, i int, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", n.nodes[i].NS, name}, args...)...)
	cmd.SysProcAttr = deathSignal()
	return cmd
}

// Listen listens in node i's namespace (see net.Listen).
func (n *Net) Listen(i int, network, address string) (net.Listener, error) {
	return n.ListenConfig(i, net.ListenConfig{}, network, address)
}

// ListenConfig listens in node i's namespace with lc (see
// net.ListenConfig.Listen).
func (n *Net) ListenConfig(i int, lc net.ListenConfig, network, address string) (net.Listener, error) {
	var l net.Listener
	err := inNetns(n.nodes[i].NS, func() (err error) {
		l, err = lc.Listen(context.Background(), network, address)
		return err
	})
	return l, err
}

// ListenPacket listens for packets in node i's namespace (see
// net.ListenPacket).
func (n *Net) ListenPacket(i int, network, address string) (net.PacketConn, error) {
	var l net.PacketConn
	err := inNetns(n.nodes[i].NS, func() (err error) {
		l, err = net.ListenPacket(network, address)
		return err
	})
	return l, err
}

// Dial connects from node i's namespace (see net.Dialer.DialContext).
func (n *Net) Dial(ctx context.Context, i int, network, address string) (net.Conn, error) {
	var c net.Conn
	err := inNetns(n.nodes[i].NS, func() (err error) {
		c, err = (&net.Dialer{}).DialContext(ctx, network, address)
		return err
	})
	return c, err
}

// ip runs the ip command with stdin.
func ip(stdin io.Reader, args ...string) error {
	cmd := exec.Command("ip", args...)
	cmd.Stdin = stdin
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("netemu: ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
