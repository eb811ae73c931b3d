package pay

// SettleBatch exposes Channels.settleBatch to the package's external tests.
var SettleBatch = (*Channels).settleBatch

// Spares counts the spare channels Channels keeps, for every relay.
func Spares(c *Channels) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, l := range c.spares {
		n += len(l)
	}
	return n
}
