//go:build linux

package main

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// liveness bounds how long a test waits for something that must happen: only a hang reaches it.
const liveness = 2 * time.Minute

// buildProcguard compiles this package into a temporary folder.
func buildProcguard(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "procguard")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// marker returns a fresh NAME=VALUE for the environment of the processes a test starts.
func marker(t *testing.T) string {
	t.Helper()
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "PROCGUARD_TEST_MARK=" + hex.EncodeToString(b)
}

// marked lists the live processes with mark in their environment, by their command line.
func marked(mark string) map[int]string {
	found := map[int]string{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		env, err := os.ReadFile("/proc/" + e.Name() + "/environ")
		if err != nil || !bytes.Contains(append(env, 0), []byte(mark+"\x00")) {
			continue
		}
		if p, err := readStat(pid); err != nil || p.zombie() {
			continue
		}
		cmdline, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		found[pid] = strings.ReplaceAll(strings.TrimRight(string(cmdline), "\x00"), "\x00", " ")
	}
	return found
}

// waitFor polls cond until it holds, failing the test after the liveness bound.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(liveness)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("still waiting after %s for %s", liveness, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// countWith counts the processes whose command line starts with s.
func countWith(procs map[int]string, s string) int {
	n := 0
	for _, cmd := range procs {
		if strings.HasPrefix(cmd, s) {
			n++
		}
	}
	return n
}

// killMarked kills what a failed test left behind.
func killMarked(mark string) {
	for pid := range marked(mark) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

// startFront runs procguard in a process group of its own (as Jupyter does) with script as the command.
func startFront(t *testing.T, bin, mark, script string, flags ...string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	args := append(flags, "--", "bash", "-c", script)
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), mark)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		killMarked(mark)
	})
	return cmd, &stderr
}

// A tree that escapes its parent in every way a kernel's processes do: a child in a session of
// its own (gopls's telemetry child), one in a process group of its own (gopls), one that
// ignores SIGINT and SIGTERM, and an orphan whose parent has exited.
const escapingTree = `
setsid sleep 1001 &
set -m; sleep 1002 & set +m
bash -c 'trap "" INT TERM; exec sleep 1003' &
bash -c 'sleep 1004 & exit 0'
echo started >&2
wait
`

func TestKillingTheFrontStopsEveryProcess(t *testing.T) {
	bin, mark := buildProcguard(t), marker(t)
	for _, sig := range []syscall.Signal{syscall.SIGKILL, syscall.SIGTERM, syscall.SIGHUP} {
		t.Run(sig.String(), func(t *testing.T) {
			front, _ := startFront(t, bin, mark, escapingTree)
			waitFor(t, "the tree to start", func() bool { return countWith(marked(mark), "sleep 100") == 4 })
			// Jupyter signals the kernel's process group: a forced shutdown sends SIGKILL.
			if err := syscall.Kill(-front.Process.Pid, sig); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "every process to end", func() bool { return len(marked(mark)) == 0 })
			_ = front.Wait()
		})
	}
}

func TestACommandThatExitsLeavesNothingAndGivesItsStatus(t *testing.T) {
	bin, mark := buildProcguard(t), marker(t)
	front, _ := startFront(t, bin, mark, "setsid sleep 1001 & bash -c 'sleep 1002 & exit 0'; exit 3")
	err := front.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 3 {
		t.Fatalf("procguard ended with %v, want exit status 3", err)
	}
	waitFor(t, "the command's children to end", func() bool { return len(marked(mark)) == 0 })
}

func TestInterruptStopsTheCommandsProcessesButNotItsGroupLeaders(t *testing.T) {
	bin, mark := buildProcguard(t), marker(t)
	// The command survives SIGINT (as GoNB does), and so does the child that ignores it until
	// the grace period ends; the child leading its own process group (as gopls) is left alone.
	script := `trap 'echo interrupted >&2' INT
set -m; sleep 1002 & set +m
bash -c 'trap "" INT; exec sleep 1003' &
sleep 1005 &
echo started >&2
while :; do wait; done`
	front, stderr := startFront(t, bin, mark, script, "-interrupt-grace=100ms")
	waitFor(t, "the tree to start", func() bool { return countWith(marked(mark), "sleep 100") == 3 })
	if err := syscall.Kill(-front.Process.Pid, syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the interrupted processes to end", func() bool {
		procs := marked(mark)
		return countWith(procs, "sleep 1003") == 0 && countWith(procs, "sleep 1005") == 0
	})
	procs := marked(mark)
	if countWith(procs, "sleep 1002") != 1 {
		t.Errorf("the group leader did not survive the interrupt: %v", procs)
	}
	waitFor(t, "the command to see the interrupt", func() bool { return strings.Contains(stderr.String(), "interrupted") })
	if err := syscall.Kill(-front.Process.Pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "every process to end", func() bool { return len(marked(mark)) == 0 })
	_ = front.Wait()
}

func TestDropStderrLeavesOutMatchingLines(t *testing.T) {
	bin, mark := buildProcguard(t), marker(t)
	front, stderr := startFront(t, bin, mark, `echo keep one >&2; echo "E1130 main.go:191] self test" >&2; printf 'keep two' >&2`,
		`-drop-stderr=^E\d{4} main\.go:\d+\] self test$`)
	if err := front.Wait(); err != nil {
		t.Fatal(err)
	}
	if got, want := stderr.String(), "keep one\nkeep two"; got != want {
		t.Fatalf("stderr = %q, want %q", got, want)
	}
}

func TestTheCommandGetsATemporaryFolderThatIsRemovedAfter(t *testing.T) {
	bin, mark := buildProcguard(t), marker(t)
	front, stderr := startFront(t, bin, mark, `echo "$TMPDIR" >&2; touch "$TMPDIR/file"`)
	if err := front.Wait(); err != nil {
		t.Fatal(err)
	}
	dir := strings.TrimSpace(stderr.String())
	if !strings.Contains(filepath.Base(dir), "goptlab-kernel-") {
		t.Fatalf("TMPDIR = %q, want a goptlab-kernel-* folder", dir)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("%s is still there after the command ended (stat: %v)", dir, err)
	}
}

func TestFlagsAreChecked(t *testing.T) {
	for _, args := range [][]string{{}, {"-drop-stderr=("}, {"-interrupt-grace=-1s", "--", "true"}} {
		if _, err := parseFlags(args); err == nil {
			t.Errorf("parseFlags(%q) accepted them", args)
		}
	}
	cfg, err := parseFlags([]string{"-exclusive=/k.json", "--", "gonb", "--kernel", "/k.json"})
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprintf("%s %v", cfg.exclusive, cfg.command); got != "/k.json [gonb --kernel /k.json]" {
		t.Fatalf("parsed %s", got)
	}
}

func TestDescendantsFollowTheTreeAndSkipSparedSubtrees(t *testing.T) {
	tab := &procTable{byPID: map[int]procInfo{}, children: map[int][]int{}}
	add := func(pid, ppid, pgid int, state byte) {
		tab.byPID[pid] = procInfo{pid: pid, ppid: ppid, pgid: pgid, state: state}
		tab.children[ppid] = append(tab.children[ppid], pid)
	}
	add(10, 1, 10, 'S')  // the command
	add(11, 10, 11, 'S') // its gopls: leads its own group
	add(12, 11, 11, 'S') // gopls's child
	add(13, 10, 10, 'R') // a cell program
	add(14, 13, 10, 'S') // its child
	add(15, 13, 10, 'Z') // an exited child, not yet reaped
	var got []int
	for _, p := range tab.descendants(10, spareOnInterrupt) {
		got = append(got, p.pid)
	}
	if fmt.Sprint(got) != "[13 14]" {
		t.Fatalf("descendants with gopls spared = %v, want [13 14]", got)
	}
	if n := len(tab.descendants(10, nil)); n != 4 {
		t.Fatalf("all live descendants: %d, want 4", n)
	}
}

// TestFrontWhoseParentDiesStopsEveryProcess: the client that started the kernel dies
// without stopping it (a Jupyter server killed with SIGKILL): the kernel's processes must
// not outlive it. The "client" here is a bash that starts procguard in the background,
// waits until procguard's command runs, and exits.
func TestFrontWhoseParentDiesStopsEveryProcess(t *testing.T) {
	bin, mark := buildProcguard(t), marker(t)
	t.Cleanup(func() { killMarked(mark) })
	ready := filepath.Join(t.TempDir(), "ready")
	client := exec.Command("bash", "-c", `"$0" -- bash -c "touch '$2'; $1" </dev/null >/dev/null 2>&1 &
until [ -e "$2" ]; do sleep 0.01; done
exit 0`, bin, escapingTree, ready)
	client.Env = append(os.Environ(), mark)
	if out, err := client.CombinedOutput(); err != nil {
		t.Fatalf("client: %v: %s", err, out)
	}
	waitFor(t, "every process to end after its client died", func() bool { return len(marked(mark)) == 0 })
}
