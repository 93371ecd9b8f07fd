//go:build race

package vaultstore_test

// raceEnabled tells tests that measure a process's memory that the race
// detector's own bookkeeping would be counted too.
const raceEnabled = true
