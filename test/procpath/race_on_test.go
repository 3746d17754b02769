//go:build race

package procpath_test

const raceEnabled = true
