//go:build !linux

package main

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"
)

// run replaces procguard with the command: supervision needs Linux's prctl and /proc.
func run(cfg *config) int {
	path, err := exec.LookPath(cfg.command[0])
	if err != nil {
		fmt.Fprintf(os.Stderr, "procguard: %v\n", err)
		return 1
	}
	err = syscall.Exec(path, cfg.command, os.Environ())
	fmt.Fprintf(os.Stderr, "procguard: running %s: %v\n", path, err)
	return 1
}
