//go:build !linux

package e2e

import "os/exec"

// dieWithParent does nothing where the kernel cannot tie a child's life to
// its parent's; the test cleanups still stop every process.
func dieWithParent(*exec.Cmd) {}
