package client

// SetPathBiasMinimum lowers the number of circuits and streams through a
// guard before path bias judges it, so that tests need build fewer.
func SetPathBiasMinimum(m *Manager, circuits, streams float64) {
	m.guards.mu.Lock()
	defer m.guards.mu.Unlock()
	m.guards.bias.minCircs, m.guards.bias.minStreams = circuits, streams
}
