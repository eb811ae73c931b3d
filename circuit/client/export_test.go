package client

import "time"

// SetPathBiasMinimum lowers the number of circuits and streams through a
// guard before path bias judges it, so that tests need build fewer.
func SetPathBiasMinimum(m *CircuitManager, circuits, streams float64) {
	m.guards.mu.Lock()
	defer m.guards.mu.Unlock()
	m.guards.bias.minCircs, m.guards.bias.minStreams = circuits, streams
}

// Delivered is what the exit sent on c, and over how long (capacity.go).
func Delivered(c *Circuit) (uint64, time.Duration) { return c.delivered() }

// CapacitySamples is how many circuits m has taken capacity samples of.
func CapacitySamples(m *CircuitManager) int {
	m.capacity.mu.Lock()
	defer m.capacity.mu.Unlock()
	return m.capacity.all.n
}
