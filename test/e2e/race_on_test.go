//go:build race && !release

package e2e_test

const raceEnabled = true
