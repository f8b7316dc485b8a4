package dynamolocal

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// Pdeathsig kills the JVM when the process that started it dies, however it
// dies, so nothing is left running after a crashed test.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// listens reports whether process pid holds the socket listening on port.
// A free port is only free until someone takes it: another test's server can
// bind it between freePort and the JVM, answer our ping, and leave, so an
// answer alone does not say the JVM we started is the one answering.
func listens(pid, port int) (bool, error) {
	inodes := map[string]bool{}
	for _, table := range []string{"tcp", "tcp6"} {
		f, err := os.Open(filepath.Join("/proc", strconv.Itoa(pid), "net", table))
		if err != nil {
			if os.IsNotExist(err) {
				continue
			}
			return false, err
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
			fields := strings.Fields(sc.Text())
			if len(fields) < 10 || fields[3] != "0A" { // 0A: LISTEN
				continue
			}
			if i := strings.LastIndexByte(fields[1], ':'); i >= 0 && fields[1][i+1:] == fmt.Sprintf("%04X", port) {
				inodes["socket:["+fields[9]+"]"] = true
			}
		}
		f.Close()
		if err := sc.Err(); err != nil {
			return false, err
		}
	}
	if len(inodes) == 0 {
		return false, nil
	}
	fds := filepath.Join("/proc", strconv.Itoa(pid), "fd")
	entries, err := os.ReadDir(fds)
	if err != nil {
		return false, err
	}
	for _, e := range entries {
		if link, err := os.Readlink(filepath.Join(fds, e.Name())); err == nil && inodes[link] {
			return true, nil
		}
	}
	return false, nil
}
