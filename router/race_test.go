//go:build race

package router_test

// raceEnabled is whether the race detector is on: it makes work that
// moves many cells take several times longer.
const raceEnabled = true
