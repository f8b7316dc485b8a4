package cli

import (
	"os"

	"github.com/mattn/go-isatty"
)

// StdoutTerminal reports whether stdout is a terminal, and its width in
// columns (0 when unknown).
func StdoutTerminal() (bool, int) {
	fd := os.Stdout.Fd()
	if !isatty.IsTerminal(fd) {
		return false, 0
	}
	return true, terminalWidth(fd)
}
