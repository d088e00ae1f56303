// Command procguard runs a Jupyter kernel so that every process the kernel starts
// ends with it, and so that Jupyter's signals reach the kernel's processes the way a
// notebook user means them.
//
// Usage:
//
//	procguard [flags] -- command [args...]
//
// kernel/launch.sh runs GoNB through it. Jupyter starts the kernel in a process
// group of its own and signals that group: SIGINT to interrupt a cell (kernelspec
// interrupt_mode "signal"), SIGTERM when a shutdown takes too long, SIGKILL for a
// forced shutdown or restart. procguard therefore runs as two processes:
//
//   - the front, the process Jupyter started: it forwards SIGINT, SIGTERM and SIGHUP
//     to the keeper and exits with the keeper's status;
//   - the keeper, in a session of its own (so Jupyter's group signals never reach
//     the command directly), told by the kernel (PR_SET_PDEATHSIG) when the front
//     dies and made a child subreaper (PR_SET_CHILD_SUBREAPER), so that every
//     process started under it stays its descendant even when its parent exits.
//
// The keeper starts the command and then:
//
//   - on SIGINT, interrupts the command's work: it sends SIGINT to the command and to
//     every process descended from it, and after -interrupt-grace kills (SIGKILL) those
//     of them still running, with whatever they started meanwhile. The command's
//     direct children that lead a process group of their own are left alone: GoNB
//     starts gopls, its language server, that way, and its cell programs, go build and
//     shell commands in its own group;
//   - on SIGTERM or SIGHUP, or when the front dies (SIGKILL included), kills the
//     command and every process descended from it;
//   - when the command exits by itself, kills whatever it left running;
//
// and in every case removes the temporary directory it gave the command (TMPDIR)
// and exits with the command's status.
//
// On systems other than Linux procguard runs the command in its place, unsupervised.
package main

import (
	"flag"
	"fmt"
	"os"
	"regexp"
	"time"
)

// config holds procguard's flags.
type config struct {
	keeper         bool
	interruptGrace time.Duration
	exclusive      string
	dropStderr     *regexp.Regexp
	command        []string
}

func parseFlags(args []string) (*config, error) {
	fs := flag.NewFlagSet("procguard", flag.ContinueOnError)
	cfg := &config{}
	fs.BoolVar(&cfg.keeper, "keeper", false, "internal: run as the keeper (the front starts it so)")
	fs.DurationVar(&cfg.interruptGrace, "interrupt-grace", 2*time.Second,
		"after an interrupt (SIGINT), how long the command's processes have to exit before they are killed")
	fs.StringVar(&cfg.exclusive, "exclusive", "",
		"a key (e.g. the kernel's connection file): wait until no other procguard started with the same key is running "+
			"before starting the command (a restarted kernel reuses its predecessor's ports)")
	drop := fs.String("drop-stderr", "", "a regular expression: lines of the command's stderr that match it are dropped")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if *drop != "" {
		re, err := regexp.Compile(*drop)
		if err != nil {
			return nil, fmt.Errorf("procguard: -drop-stderr: %w", err)
		}
		cfg.dropStderr = re
	}
	if cfg.interruptGrace < 0 {
		return nil, fmt.Errorf("procguard: -interrupt-grace=%s: must not be negative", cfg.interruptGrace)
	}
	cfg.command = fs.Args()
	if len(cfg.command) == 0 {
		return nil, fmt.Errorf("procguard: no command: usage: procguard [flags] -- command [args...]")
	}
	return cfg, nil
}

func main() {
	cfg, err := parseFlags(os.Args[1:])
	if err != nil {
		if err != flag.ErrHelp {
			fmt.Fprintln(os.Stderr, err)
		}
		os.Exit(2)
	}
	os.Exit(run(cfg))
}
