//go:build linux

package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const (
	prSetChildSubreaper = 36 // PR_SET_CHILD_SUBREAPER, <linux/prctl.h>

	// predecessorWait bounds how long a keeper waits for another keeper with the same
	// -exclusive key to finish: a liveness bound, that keeper only has processes to kill.
	predecessorWait = 60 * time.Second
	// killWait bounds how long the keeper keeps killing and reaping the processes it stops
	// (a liveness bound: SIGKILL cannot be ignored, only an uninterruptible sleep delays it).
	killWait = 30 * time.Second
)

func run(cfg *config) int {
	if cfg.keeper {
		return runKeeper(cfg)
	}
	return runFront()
}

// exitCode turns a wait status into a shell-style exit code.
func exitCode(ws syscall.WaitStatus) int {
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}

// runFront starts the keeper (this program again, with -keeper first), forwards Jupyter's
// signals to it and exits with its status.
func runFront() int {
	// The keeper's parent-death signal fires when the thread that started it exits: keep
	// this goroutine, which starts it and then waits, on one thread for the whole run.
	runtime.LockOSThread()
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintf(os.Stderr, "procguard: finding its own executable: %v\n", err)
		return 1
	}
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	args := append([]string{os.Args[0], "-keeper"}, os.Args[1:]...)
	keeper, err := os.StartProcess(exe, args, &os.ProcAttr{
		Files: []*os.File{os.Stdin, os.Stdout, os.Stderr},
		Sys:   &syscall.SysProcAttr{Setsid: true, Pdeathsig: syscall.SIGTERM},
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "procguard: starting the keeper: %v\n", err)
		return 1
	}
	// The front's parent is the Jupyter server or client that started the kernel. If it
	// dies without stopping the kernel (killed with SIGKILL, say), nobody else will: the
	// front then stops the keeper as if it had received SIGTERM. (A polled parent pid, not
	// PR_SET_PDEATHSIG: that signal fires when the parent's thread exits, and a client may
	// start kernels from a thread that ends before the kernel does.)
	orphaned := make(chan struct{})
	go watchParent(os.Getppid(), time.Second, orphaned)
	done := make(chan syscall.WaitStatus, 1)
	go func() {
		var ws syscall.WaitStatus
		for {
			_, err := syscall.Wait4(keeper.Pid, &ws, 0, nil)
			if err != syscall.EINTR {
				break
			}
		}
		done <- ws
	}()
	for {
		select {
		case sig := <-sigs:
			if sig != syscall.SIGINT {
				sig = syscall.SIGTERM
			}
			_ = syscall.Kill(keeper.Pid, sig.(syscall.Signal))
		case <-orphaned:
			orphaned = nil
			_ = syscall.Kill(keeper.Pid, syscall.SIGTERM)
		case ws := <-done:
			return exitCode(ws)
		}
	}
}

// watchParent closes orphaned once this process's parent is no longer parent, the parent
// pid it had at start, checking every period.
func watchParent(parent int, period time.Duration, orphaned chan<- struct{}) {
	for os.Getppid() == parent {
		time.Sleep(period)
	}
	close(orphaned)
}

// keeper supervises the command; see the package documentation.
type keeper struct {
	cfg     *config
	self    int
	cmdPID  int
	cmdDone bool
	cmdWS   syscall.WaitStatus
	expired chan []procInfo // process sets whose interrupt grace has run out
}

func runKeeper(cfg *config) int {
	k := &keeper{cfg: cfg, self: os.Getpid(), expired: make(chan []procInfo, 8)}
	if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0); errno != 0 {
		fmt.Fprintf(os.Stderr, "procguard: prctl(PR_SET_CHILD_SUBREAPER): %v\n", errno)
		return 1
	}
	// Before any child exists, so that no SIGCHLD and no signal from the front is missed.
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGCHLD)
	if cfg.exclusive != "" {
		waitForPredecessors(k.self, cfg.exclusive)
	}

	tmp, err := os.MkdirTemp("", "goptlab-kernel-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "procguard: creating the command's temporary directory: %v\n", err)
		return 1
	}
	defer os.RemoveAll(tmp)

	filterDone, err := k.start(tmp)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}

	for !k.cmdDone {
		select {
		case sig := <-sigs:
			switch sig {
			case syscall.SIGCHLD:
				k.reap() // notes the command's exit
			case syscall.SIGINT:
				k.interrupt()
			default: // SIGTERM (from the front, or on the front's death) or SIGHUP: stop everything
				k.killAll()
				k.cmdDone = true // if it had not exited, it was killed: its status says so
			}
		case procs := <-k.expired:
			k.killRemaining(procs)
		}
	}
	// The command has exited (or was killed): stop whatever it left behind.
	k.killAll()
	if filterDone != nil {
		select {
		case <-filterDone:
		case <-time.After(5 * time.Second): // a writer we could not kill still holds the pipe
		}
	}
	return exitCode(k.cmdWS)
}

// start runs the command with TMPDIR=tmp; its stderr goes through the -drop-stderr filter.
// The returned channel is closed when the filter has copied all of the command's stderr.
func (k *keeper) start(tmp string) (<-chan struct{}, error) {
	path, err := exec.LookPath(k.cfg.command[0])
	if err != nil {
		return nil, fmt.Errorf("procguard: %w", err)
	}
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "TMPDIR=") })
	env = append(env, "TMPDIR="+tmp)
	files := []*os.File{os.Stdin, os.Stdout, os.Stderr}
	var filterDone chan struct{}
	var w *os.File
	if k.cfg.dropStderr != nil {
		var r *os.File
		if r, w, err = os.Pipe(); err != nil {
			return nil, fmt.Errorf("procguard: creating the stderr pipe: %w", err)
		}
		files[2] = w
		filterDone = make(chan struct{})
		go func() {
			defer close(filterDone)
			filterLines(r, os.Stderr, k.cfg.dropStderr)
			_ = r.Close()
		}()
	}
	p, err := os.StartProcess(path, k.cfg.command, &os.ProcAttr{Env: env, Files: files})
	if w != nil {
		_ = w.Close()
	}
	if err != nil {
		return nil, fmt.Errorf("procguard: starting %s: %w", path, err)
	}
	k.cmdPID = p.Pid
	_ = p.Release() // the keeper reaps all its children itself, with wait4(-1)
	return filterDone, nil
}

// filterLines copies r to w line by line, leaving out the lines that match drop.
func filterLines(r io.Reader, w io.Writer, drop *regexp.Regexp) {
	br := bufio.NewReader(r)
	for {
		line, err := br.ReadString('\n')
		if line != "" && !drop.MatchString(strings.TrimRight(line, "\r\n")) {
			_, _ = io.WriteString(w, line)
		}
		if err != nil {
			return
		}
	}
}

// reap collects every exited child (the command's orphans are the keeper's children too),
// noting the command's status. It reports whether the keeper has no children left.
func (k *keeper) reap() (none bool) {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.ECHILD:
			return true
		case err != nil || pid <= 0:
			return false
		case pid == k.cmdPID:
			k.cmdDone, k.cmdWS = true, ws
		}
	}
}

// spareOnInterrupt reports whether an interrupt leaves the command's direct child p alone:
// the children that lead a process group of their own (GoNB's gopls).
func spareOnInterrupt(p procInfo) bool { return p.pgid == p.pid }

// interrupt sends SIGINT to the command and its processes (but the spared ones), and
// arranges for those still running after the grace period to be killed.
func (k *keeper) interrupt() {
	t, err := scanProcs()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		_ = syscall.Kill(k.cmdPID, syscall.SIGINT)
		return
	}
	procs := t.descendants(k.cmdPID, spareOnInterrupt)
	_ = syscall.Kill(k.cmdPID, syscall.SIGINT)
	for _, p := range procs {
		_ = syscall.Kill(p.pid, syscall.SIGINT)
	}
	if len(procs) > 0 {
		time.AfterFunc(k.cfg.interruptGrace, func() { k.expired <- procs })
	}
}

// killRemaining kills those of procs still running, with the processes they started since.
func (k *keeper) killRemaining(procs []procInfo) {
	t, err := scanProcs()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	for _, p := range procs {
		if !t.alive(p) {
			continue
		}
		_ = syscall.Kill(p.pid, syscall.SIGKILL)
		for _, d := range t.descendants(p.pid, nil) {
			_ = syscall.Kill(d.pid, syscall.SIGKILL)
		}
	}
	k.reap()
}

// killAll kills the command and every process descended from the keeper, and reaps them.
func (k *keeper) killAll() {
	if !k.cmdDone {
		// First, so that it releases what it holds (GoNB: the kernel's ports) at once.
		_ = syscall.Kill(k.cmdPID, syscall.SIGKILL)
	}
	// A killed process stays the keeper's child until all its threads have exited: rescan,
	// kill what still runs (a process that forked meanwhile, an orphan just reparented), reap.
	deadline := time.Now().Add(killWait)
	for {
		t, err := scanProcs()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return
		}
		for _, p := range t.descendants(k.self, nil) {
			_ = syscall.Kill(p.pid, syscall.SIGKILL)
		}
		if k.reap() || time.Now().After(deadline) {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// waitForPredecessors waits (within predecessorWait) until no keeper other than self runs
// with the same -exclusive key.
func waitForPredecessors(self int, key string) {
	flag := "-exclusive=" + key
	deadline := time.Now().Add(predecessorWait)
	for time.Now().Before(deadline) {
		if !otherKeeperRuns(self, flag) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// otherKeeperRuns reports whether a process other than self has "-keeper" and flag in its arguments.
func otherKeeperRuns(self int, flag string) bool {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return false
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		data, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil || len(data) == 0 {
			continue
		}
		args := strings.Split(strings.TrimSuffix(string(data), "\x00"), "\x00")
		if slices.Contains(args, "-keeper") && slices.Contains(args, flag) {
			if p, err := readStat(pid); err == nil && !p.zombie() {
				return true
			}
		}
	}
	return false
}
