//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package cli

func terminalWidth(uintptr) int { return 0 }
