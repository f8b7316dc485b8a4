//go:build !linux

package dynamolocal

import "syscall"

func sysProcAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }

// listens cannot tell elsewhere; an answer on the port is taken as the JVM's.
func listens(pid, port int) (bool, error) { return true, nil }
