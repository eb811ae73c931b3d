package sim

import (
	"os"
	"testing"

	logging "github.com/ipfs/go-log/v2"
)

func TestMain(m *testing.M) {
	// A crashed relay's listener closes under libp2p's swarm, which logs
	// it as an error; in a simulation of crashes that is the point.
	logging.SetLogLevel("swarm2", "fatal")
	os.Exit(m.Run())
}
