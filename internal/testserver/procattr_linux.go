package testserver

import "syscall"

// sysProcAttr puts the server in its own process group, so one kill reaches
// all of it, and has the kernel SIGKILL it when the test binary dies.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
