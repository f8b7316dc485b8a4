package dynamolocal

import "syscall"

// Pdeathsig kills the JVM when the process that started it dies, however it
// dies, so nothing is left running after a crashed test.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
