package sim

// Tor's directory cost for R relays, the yardstick for discovery cost.
// It is a model, not a measurement (docs/scale.md states it): a client in
// steady state fetches a consensus diff every hour (about 15% of the
// microdescriptor consensus) and the microdescriptors that changed (about
// a seventh of them a day, with weekly onion-key rotation); a relay
// fetches a diff of the full consensus every hour and every server
// descriptor again when it is republished (every 18 hours). Sizes are
// compressed bytes per relay.
const (
	torMicroConsensusPerRelay = 140
	torMicrodescPerRelay      = 220
	torFullConsensusPerRelay  = 300
	torServerDescPerRelay     = 1000
	torDiffShare              = 0.15
)

func torClientBytesPerDay(relays int) float64 {
	r := float64(relays)
	return 24*torDiffShare*torMicroConsensusPerRelay*r + torMicrodescPerRelay*r/7
}

func torRelayBytesPerHour(relays int) float64 {
	r := float64(relays)
	return torDiffShare*torFullConsensusPerRelay*r + torServerDescPerRelay*r/18
}
