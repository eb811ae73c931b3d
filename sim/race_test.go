//go:build race

package sim

// raceDetector is true in a test binary built with -race.
const raceDetector = true
