//go:build linux

package procpath_test

import (
	"os/exec"
	"syscall"
)

// dieWithUs has the kernel kill cmd if the test process dies first, so
// that no child outlives a crashed or killed test.
func dieWithUs(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
