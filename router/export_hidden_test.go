package router

import "time"

// SetRendezvousWait sets how long a client circuit may wait at a
// rendezvous point, and returns a function that restores it.
func SetRendezvousWait(d time.Duration) (restore func()) {
	old := rendezvousWait.Swap(int64(d))
	return func() { rendezvousWait.Store(old) }
}
