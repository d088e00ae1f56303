// Command bench-xlaflags measures what XLA CPU flags, the intra-op thread count and the
// convolution's lowering do to our training steps, to find what makes XLA CPU's
// convolutions and matrix products faster (issue 11).
//
// XLA reads $XLA_FLAGS once per process, so every flag set runs in a child process of its
// own (this program started with -child and the set's $XLA_FLAGS; a set with CPUs runs
// under taskset, which sets the size of XLA CPU's intra-op thread pool). Each child
// compiles every case (the bare Adam step of the small CNN in three convolution lowerings
// and of the MLP, as cmd/bench-peers' "bare exec", and a float32 GEMM) and then waits.
// Rounds interleave the children: each round runs one block of every case in every child,
// in an order rotated from round to round, and ratios to the baseline (the flags
// mlx.Backend uses today) are medians of the per-round ratios, so that other work on the
// machine weighs on all alike. Each child's step results (the loss after each block, the
// GEMM's sum) are compared with the baseline's, bit for bit.
//
//	go run ./cmd/bench-xlaflags            # all flag sets, 9 rounds (about 8 minutes on 2 cores); writes docs/XLA_FLAGS.md
//	go run ./cmd/bench-xlaflags -quick     # 1 round of short blocks, to check the set-up; writes nothing
//	go run ./cmd/bench-xlaflags -sets vw256,onednn -add 'mine=--xla_cpu_enable_fast_min_max=false'
//
// The results go between the markers of docs/XLA_FLAGS.md (the text around them is kept).
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

var (
	flagQuick   = flag.Bool("quick", false, "one round of short blocks, to check the set-up (writes no doc unless -write)")
	flagRounds  = flag.Int("rounds", 0, "rounds (default 7, or 1 with -quick)")
	flagSets    = flag.String("sets", "", "comma-separated flag sets to run besides the baseline (default: all built-in sets; -list shows them)")
	flagCases   = flag.String("cases", strings.Join(flagCasesDefault, ","), "comma-separated cases timed in every flag set")
	flagLayouts = flag.String("layouts", strings.Join(layoutCasesDefault, ","), "comma-separated variants of the CNN timed against it in the baseline's child")
	flagLabel   = flag.String("label", "all", "the run's name in -doc: a run replaces the section of the earlier run of its label")
	flagDoc     = flag.String("doc", "docs/XLA_FLAGS.md", "the document whose results section this run replaces")
	flagWrite   = flag.Bool("write", true, "write the results into -doc (a -quick run writes only if -write is given explicitly)")
	flagList    = flag.Bool("list", false, "list the built-in flag sets and exit")
	flagChild   = flag.Bool("child", false, "internal: run as a child (cases from -cases, flags from $XLA_FLAGS)")
	flagDump    = flag.Bool("dump", true, "have each child dump its optimized HLO (into a temporary folder, removed after) and report what each flag set changed in it")
	flagTimeout = flag.Duration("timeout", 10*time.Minute, "the longest a child may take to compile its cases, or to run one block")
	extraSets   setList
)

// layoutsName names the child that times the CNN's lowerings.
const layoutsName = "layouts"

// dumpFlag is the XLA flag that dumps the compiled HLO into a folder.
const dumpFlag = "--xla_dump_to="

// allCases are the cases, in table order.
var allCases = []string{caseCNN, caseCNNNCHW, caseCNNCol, caseCNNPool, caseCNNArg, caseMLP, caseGEMM}

// Default cases: the flag sets are timed on the CNN, the MLP and the GEMM; the CNN's
// other convolution lowerings with the baseline's flags.
var (
	flagCasesDefault   = []string{caseCNN, caseMLP, caseGEMM}
	layoutCasesDefault = []string{caseCNNNCHW, caseCNNCol, caseCNNPool, caseCNNArg}
)

// setList collects -add flags.
type setList []FlagSet

func (l *setList) String() string { return fmt.Sprint(len(*l)) }

func (l *setList) Set(s string) error {
	fs, err := ParseFlagSet(s)
	if err != nil {
		return err
	}
	*l = append(*l, fs)
	return nil
}

func init() {
	flag.Var(&extraSets, "add", "an extra flag set NAME=FLAGS (FLAGS: space-separated --xla_... flags, optionally after @CPUS: for taskset); repeatable")
}

func main() {
	flag.Parse()
	cases, err := parseCases(*flagCases, false)
	var layouts []string
	if err == nil {
		layouts, err = parseCases(*flagLayouts, true)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench-xlaflags:", err)
		os.Exit(2)
	}
	if *flagChild {
		check := map[string]int{}
		for c, info := range caseInfo {
			check[c] = info.check
			if *flagQuick {
				check[c] = info.quickCheck
			}
		}
		if err := runChild(cases, check, os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "bench-xlaflags child:", err)
			os.Exit(1)
		}
		return
	}
	if *flagList {
		for _, s := range builtinSets {
			fmt.Printf("%-14s %-40s %s\n", s.Name, s.Flags+cpusNote(s), s.Why)
		}
		return
	}
	if err := run(cases, layouts); err != nil {
		fmt.Fprintln(os.Stderr, "bench-xlaflags:", err)
		os.Exit(1)
	}
}

func cpusNote(s FlagSet) string {
	if s.CPUs == "" {
		return ""
	}
	return "(taskset -c " + s.CPUs + ")"
}

// parseCases parses a comma-separated list of case names (possibly empty if emptyOK).
func parseCases(list string, emptyOK bool) ([]string, error) {
	var out []string
	for _, c := range strings.Split(list, ",") {
		c = strings.TrimSpace(c)
		if c == "" {
			continue
		}
		if _, ok := caseInfo[c]; !ok {
			return nil, fmt.Errorf("unknown case %q; known: %s", c, strings.Join(allCases, ", "))
		}
		out = append(out, c)
	}
	if len(out) == 0 && !emptyOK {
		return nil, errors.New("no cases")
	}
	return out, nil
}

// Result is one flag set's child.
type Result struct {
	Set   FlagSet
	Hello childAnswer
	// Err is why the child failed (it is left out of the rounds after that).
	Err string
	// Cases are the cases the child runs.
	Cases []string
	// Trajectory holds each case's results of its first steps from the initial state
	// (Round is the step's index).
	Trajectory map[string][]Sample
	// HLO summarizes the optimized HLO the child compiled (with -dump).
	HLO HLOSummary
}

// Target is one case in one child (an index into Run.Results).
type Target struct {
	Set  int
	Case string
}

// Pair is a comparison timed in pairs of blocks: in every round, a block of A right next
// to a block of B (which one first alternates), so that both see the same load.
type Pair struct {
	A, B    Target
	Samples []PairSample
}

// Run is a whole run, what the report is made from.
type Run struct {
	Start, End time.Time
	Label      string
	Command    string
	Rounds     int
	Cases      []string // timed in every flag set
	Layouts    []string // timed in a child of their own with the baseline's flags, against its cnn
	Blocks     map[string]int
	// Results are the flag sets' children, baseline first, then (if Layouts is not empty)
	// the layouts' child.
	Results []*Result
	// Sets is the number of flag sets (Results[Sets] is the layouts' child).
	Sets  int
	Pairs []*Pair
	// Loads are the 1-minute load averages sampled before each round and at the end.
	Loads []float64
	Env   Environment
}

// pair returns the pair comparing a with b, or nil.
func (r *Run) pair(a, b Target) *Pair {
	for _, p := range r.Pairs {
		if p.A == a && p.B == b {
			return p
		}
	}
	return nil
}

func run(cases, layouts []string) error {
	sets, err := SelectSets(builtinSets, *flagSets, extraSets)
	if err != nil {
		return err
	}
	rounds := *flagRounds
	if rounds <= 0 {
		rounds = 9
		if *flagQuick {
			rounds = 1
		}
	}
	blocks, check := map[string]int{}, map[string]int{}
	for _, c := range allCases {
		blocks[c], check[c] = caseInfo[c].block, caseInfo[c].check
		if *flagQuick {
			blocks[c], check[c] = caseInfo[c].quickBlock, caseInfo[c].quickCheck
		}
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("finding this program to start its children: %w", err)
	}
	if !setNameRE.MatchString(*flagLabel) {
		return fmt.Errorf("-label %q: use letters, digits and _.+-", *flagLabel)
	}
	r := &Run{Start: time.Now(), Label: *flagLabel, Command: commandLine(), Rounds: rounds, Cases: cases, Layouts: layouts,
		Blocks: blocks, Env: readEnvironment()}
	dumpDir := ""
	if *flagDump {
		if dumpDir, err = os.MkdirTemp("", "bench-xlaflags-"); err != nil {
			return err
		}
		defer os.RemoveAll(dumpDir)
	}
	r.Sets = len(sets)
	if len(layouts) > 0 {
		// The CNN's other lowerings run with the baseline's flags in a child of their own,
		// so that every flag set's child compiles the same programs (their HLO is compared).
		sets = append(sets, FlagSet{Name: layoutsName, Why: "the CNN's convolution lowerings, with the baseline's flags"})
	}
	children := make([]*child, len(sets))
	defer func() {
		for _, c := range children {
			if c != nil {
				c.close()
			}
		}
	}()
	for i, s := range sets {
		res := &Result{Set: s, Cases: cases, Trajectory: map[string][]Sample{}}
		if i == r.Sets {
			res.Cases = append([]string{caseCNN}, layouts...)
		}
		r.Results = append(r.Results, res)
		fmt.Fprintf(os.Stderr, "bench-xlaflags: starting %s (%s)\n", s.Name, strings.TrimSpace(s.Flags+" "+cpusNote(s)))
		dump := ""
		if dumpDir != "" {
			dump = filepath.Join(dumpDir, s.Name)
		}
		c, hello, err := startChild(self, s, dump, res.Cases, check, *flagTimeout)
		if dump != "" {
			var derr error
			if res.HLO, derr = readHLODump(dump); derr != nil {
				fmt.Fprintf(os.Stderr, "bench-xlaflags: %s: %v\n", s.Name, derr)
			}
		}
		if err != nil {
			res.Err = err.Error()
			fmt.Fprintf(os.Stderr, "bench-xlaflags: %s failed: %v\n", s.Name, err)
			if i == 0 {
				return fmt.Errorf("the baseline child failed: %w", err)
			}
			continue
		}
		children[i] = c
		res.Hello = hello
		for _, cs := range res.Cases {
			for step, out := range hello.Trajectory[cs] {
				v, bits, err := parseResult(out)
				if err != nil {
					return fmt.Errorf("%s: %w", s.Name, err)
				}
				res.Trajectory[cs] = append(res.Trajectory[cs], Sample{Round: step, Value: v, Bits: bits})
			}
		}
		if i > 0 && i < r.Sets {
			for _, cs := range cases {
				r.Pairs = append(r.Pairs, &Pair{A: Target{0, cs}, B: Target{i, cs}})
			}
		}
	}
	if len(layouts) > 0 && children[r.Sets] != nil {
		for _, cs := range layouts {
			r.Pairs = append(r.Pairs, &Pair{A: Target{r.Sets, caseCNN}, B: Target{r.Sets, cs}})
		}
	}
	for round := range rounds {
		r.Loads = append(r.Loads, loadAverage())
		fmt.Fprintf(os.Stderr, "bench-xlaflags: round %d of %d (load %.2f)\n", round+1, rounds, r.Loads[len(r.Loads)-1])
		for k, pi := range rotate(len(r.Pairs), round) {
			p := r.Pairs[pi]
			if children[p.A.Set] == nil || children[p.B.Set] == nil {
				continue
			}
			order := []Target{p.A, p.B}
			if (round+k)%2 == 1 {
				order = []Target{p.B, p.A}
			}
			ms := map[Target]float64{}
			for _, t := range order {
				d, _, err := children[t.Set].runBlock(t.Case, blocks[t.Case], *flagTimeout)
				if err != nil {
					res := r.Results[t.Set]
					res.Err = fmt.Sprintf("round %d, %s: %v", round+1, t.Case, err)
					fmt.Fprintf(os.Stderr, "bench-xlaflags: %s failed: %s\n", res.Set.Name, res.Err)
					children[t.Set].close()
					children[t.Set] = nil
					if t.Set == 0 {
						return fmt.Errorf("the baseline child failed: %s", res.Err)
					}
					break
				}
				ms[t] = d.Seconds() * 1000 / float64(blocks[t.Case])
			}
			if len(ms) == 2 {
				p.Samples = append(p.Samples, PairSample{Round: round, AMS: ms[p.A], BMS: ms[p.B]})
			}
		}
	}
	r.Loads = append(r.Loads, loadAverage())
	r.End = time.Now()
	report := r.Markdown()
	fmt.Print(report)
	write := *flagWrite
	if *flagQuick && !flagGiven("write") {
		write = false
	}
	if write {
		if err := writeSection(*flagDoc, r.Label, report); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "bench-xlaflags: wrote the results into %s\n", *flagDoc)
	}
	return nil
}

func flagGiven(name string) bool {
	given := false
	flag.Visit(func(f *flag.Flag) { given = given || f.Name == name })
	return given
}

func commandLine() string {
	return strings.TrimSpace("go run ./cmd/bench-xlaflags " + strings.Join(os.Args[1:], " "))
}

// child is a running child process.
type child struct {
	cmd    *exec.Cmd
	in     io.WriteCloser
	lines  chan []byte
	stderr *tail
	once   sync.Once
}

// startChild starts this program as a child for the set and waits for its hello.
func startChild(self string, s FlagSet, dump string, cases []string, check map[string]int, timeout time.Duration) (*child, childAnswer, error) {
	args := []string{"-child", "-cases", strings.Join(cases, ",")}
	if *flagQuick {
		args = append(args, "-quick")
	}
	name := self
	if s.CPUs != "" {
		args = append([]string{"-c", s.CPUs, self}, args...)
		name = "taskset"
	}
	cmd := exec.Command(name, args...)
	flags := childXLAFlags(os.Getenv("XLA_FLAGS"), s)
	if dump != "" {
		flags += " " + dumpFlag + dump
	}
	cmd.Env = append(withoutEnv(os.Environ(), "XLA_FLAGS"), "XLA_FLAGS="+strings.TrimSpace(flags))
	c := &child{cmd: cmd, lines: make(chan []byte, 1), stderr: &tail{max: 4096}}
	cmd.Stderr = c.stderr
	var err error
	if c.in, err = cmd.StdinPipe(); err != nil {
		return nil, childAnswer{}, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, childAnswer{}, err
	}
	if err := cmd.Start(); err != nil {
		return nil, childAnswer{}, fmt.Errorf("starting %s: %w", name, err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			c.lines <- bytes.Clone(sc.Bytes())
		}
		close(c.lines)
	}()
	hello, err := c.answer(timeout)
	if err != nil {
		c.close()
		return nil, childAnswer{}, err
	}
	return c, hello, nil
}

// answer waits for the child's next answer.
func (c *child) answer(timeout time.Duration) (childAnswer, error) {
	var a childAnswer
	select {
	case line, ok := <-c.lines:
		if !ok {
			_ = c.cmd.Wait()
			return a, fmt.Errorf("the child exited (%v): %s", c.cmd.ProcessState, c.stderr.lastLines(3))
		}
		if err := json.Unmarshal(line, &a); err != nil {
			return a, fmt.Errorf("bad answer %q: %w", line, err)
		}
		if !a.OK {
			return a, fmt.Errorf("%s", a.Error)
		}
		return a, nil
	case <-time.After(timeout):
		return a, fmt.Errorf("no answer in %v", timeout)
	}
}

func (c *child) runBlock(cs string, steps int, timeout time.Duration) (time.Duration, string, error) {
	b, _ := json.Marshal(childRequest{Op: "run", Case: cs, Steps: steps})
	if _, err := c.in.Write(append(b, '\n')); err != nil {
		return 0, "", fmt.Errorf("writing to the child: %w", err)
	}
	a, err := c.answer(timeout)
	if err != nil {
		return 0, "", err
	}
	return time.Duration(a.Seconds * float64(time.Second)), a.Result, nil
}

// close asks the child to quit and waits for it (killing it after a few seconds).
func (c *child) close() {
	c.once.Do(func() {
		b, _ := json.Marshal(childRequest{Op: "quit"})
		_, _ = c.in.Write(append(b, '\n'))
		_ = c.in.Close()
		done := make(chan struct{})
		go func() {
			for range c.lines {
			}
			_ = c.cmd.Wait()
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = c.cmd.Process.Kill()
			<-done
		}
	})
}

func withoutEnv(env []string, name string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, name+"=") {
			out = append(out, kv)
		}
	}
	return out
}

// tail keeps the last max bytes written to it.
type tail struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = t.buf[len(t.buf)-t.max:]
	}
	return len(p), nil
}

// lastLines returns the last n non-empty lines, joined by " | ".
func (t *tail) lastLines(n int) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var lines []string
	for _, l := range strings.Split(string(t.buf), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}
