//go:build !release && unix && !linux

package devnet

import "syscall"

// childAttr puts a child in its own process group, so that a terminal's
// Ctrl-C reaches only the devnet, which stops the children in order.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
