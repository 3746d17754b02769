//go:build !race

package procpath_test

const raceEnabled = false
