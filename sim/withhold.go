package sim

import (
	"context"
	"crypto/rand"
	"errors"
	"sync"

	kad "github.com/libp2p/go-libp2p-kad-dht"
	record "github.com/libp2p/go-libp2p-record"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/obolnet/obol/dht"
)

// withholder is an adversarial DHT server: it speaks obol's DHT
// protocol, answers FIND_NODE like any server so that it sits in routing
// tables and on lookup paths, but stores no record and serves none (its
// validator refuses them all), so every put that lands on it is lost and
// every GET_VALUE it answers comes back empty.
type withholder struct {
	ep   *endpoint
	host host.Host
	kad  *kad.IpfsDHT
	once sync.Once
}

// refuseAll is the withholder's validator.
type refuseAll struct{}

var errWithheld = errors.New("sim: withheld")

func (refuseAll) Validate(string, []byte) error        { return errWithheld }
func (refuseAll) Select(string, [][]byte) (int, error) { return 0, errWithheld }

func (n *Network) addWithholder() (*withholder, error) {
	ep := n.newEndpoint(false)
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return nil, err
	}
	low, high := relayConns(n.cfg)
	h, err := newHost(n.simnet, ep, key, n.link(n.cfg.RelayBandwidth[1]), low, high)
	if err != nil {
		return nil, err
	}
	n.mu.Lock()
	boot := n.bootstrap
	n.mu.Unlock()
	k, err := kad.New(h,
		kad.Mode(kad.ModeServer),
		kad.ProtocolPrefix(dht.ProtocolPrefix),
		kad.Validator(record.NamespacedValidator{dht.RelayNamespace: refuseAll{}, dht.HSNamespace: refuseAll{}}),
		kad.DisableProviders(),
		kad.BootstrapPeers(boot...),
	)
	if err != nil {
		h.Close()
		return nil, err
	}
	w := &withholder{ep: ep, host: h, kad: k}
	for _, ai := range boot {
		h.Connect(context.Background(), ai)
	}
	k.Bootstrap(context.Background())
	n.mu.Lock()
	n.withhold = append(n.withhold, w)
	n.mu.Unlock()
	return w, nil
}

func (w *withholder) ID() peer.ID { return w.host.ID() }

func (w *withholder) stop() {
	w.once.Do(func() {
		w.kad.Close()
		w.host.Close()
	})
}
