package hidden_test

import (
	"bytes"
	"testing"

	"github.com/obolnet/obol/circuit/client"
	"github.com/obolnet/obol/hidden"
)

// A paying node's hidden-service circuits start at its circuit manager's
// guards (hidden.Config.Entry) on a real network, and those it chose
// every relay of — the descriptor fetch, its rendezvous circuit — count
// in the guard's path bias as its exit circuits do; the introduction's,
// whose last hop the service's descriptor named, does not. Before, a
// guard could fail every hidden-service circuit without its path bias
// seeing one.
func TestHiddenCircuitsCountInPathBias(t *testing.T) {
	tn := newTestNet(t, 6)
	l, _ := tn.listen(newKey(t))
	body := []byte("counted")
	serveHTTP(t, l, body)

	n, _ := tn.endpoint()
	mgr, err := client.NewCircuitManager(client.Config{Links: n.Links, Directory: n.Directory, Prebuilt: -1,
		AllowSameSubnet: true, MinGuardAge: -1, MinExitAge: -1})
	if err != nil {
		t.Fatal(err)
	}
	n.Entry = mgr
	c, err := hidden.NewConnector(n)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if got, err := get(t, c, l.Address()); err != nil || !bytes.Equal(got, body) {
		t.Fatalf("get: %q %v", got, err)
	}
	var circuits, built uint64
	for _, g := range mgr.GuardStatus() {
		circuits += g.Circuits
		built += g.Built
	}
	// At least the fetch and the rendezvous circuit; the introduction's
	// would make a third only if it were counted, but a fetch may take
	// more than one circuit, so only the lower bound is certain.
	if circuits < 2 || built < 2 {
		t.Fatalf("the guards' path bias counted %d circuits (%d built), want at least the fetch's and the rendezvous's", circuits, built)
	}
	t.Logf("path bias counted %d hidden-service circuits, %d built", circuits, built)
}
