//go:build race

package hostiletest

// raceEnabled: the race detector roughly doubles what a read allocates.
const raceEnabled = true
