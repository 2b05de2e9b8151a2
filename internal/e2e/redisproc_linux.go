package e2e

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes the kernel kill cmd when the test process ends, so
// that a test binary killed before its cleanups run (a timeout, a closed
// pipe) leaves no Redis behind.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
