//go:build !release && !race

package reliability_test

const raceEnabled = false
