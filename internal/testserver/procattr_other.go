//go:build unix && !linux

package testserver

import "syscall"

// sysProcAttr puts the server in its own process group. Only Linux can have
// the kernel kill it with the test binary (Pdeathsig); elsewhere a test
// binary killed before its cleanups leaves the server running.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
