//go:build linux

package demo

import "syscall"

// devnetAttr has the kernel stop `devnet up` (which then stops its
// children in order) if the demo dies first, say of a closed pipe.
func devnetAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
