//go:build !linux

package procpath_test

import "os/exec"

// dieWithUs does nothing here: only Linux has a parent-death signal.
// The cleanups still stop every child when the test ends normally.
func dieWithUs(*exec.Cmd) {}
