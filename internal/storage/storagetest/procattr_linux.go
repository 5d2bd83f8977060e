package storagetest

import "syscall"

// sysProcAttr puts the emulator in its own process group and has the kernel
// kill it if the test binary dies without running its cleanups.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
