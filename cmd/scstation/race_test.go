//go:build race

package main

// raceEnabled: the tests build the binary they run with the race detector
// too, so that serve's concurrency (services and forwarded commands) is
// checked.
const raceEnabled = true
