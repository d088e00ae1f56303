package main

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// FlagSet is one XLA CPU configuration to time: the flags put in the child's $XLA_FLAGS,
// and optionally a CPU list the child is pinned to (with taskset), which sets the size of
// XLA CPU's intra-op thread pool (it has one thread per CPU the process may run on).
type FlagSet struct {
	// Name identifies the set in tables and in -sets.
	Name string
	// Flags are the XLA flags, space-separated ("--xla_cpu_...=..."); empty for the baseline.
	Flags string
	// CPUs, if not empty, is taskset's CPU list for the child ("0": one CPU, so one thread).
	CPUs string
	// Why says what the set tests.
	Why string
}

// baselineName is the set every other is compared with: the flags mlx.Backend uses
// (it appends --xla_cpu_prefer_vector_width=512 to an empty $XLA_FLAGS).
const baselineName = "baseline"

// builtinSets are the configurations tried by default. Every flag here is one the plugin
// knows (its name is in the plugin library's strings); XLA aborts on a flag it does not know.
var builtinSets = []FlagSet{
	{Name: baselineName, Why: "what mlx.Backend runs today: XLA's defaults plus --xla_cpu_prefer_vector_width=512 (appended by mlx)"},
	{Name: "aa-control", Why: "a second child with the baseline's flags: the A/A control, what noise alone does to the ratios"},
	{Name: "vw256", Flags: "--xla_cpu_prefer_vector_width=256", Why: "XLA's own default vector width (mlx asks for 512)"},
	{Name: "xnnpack", Flags: "--xla_cpu_use_xnnpack=true", Why: "XNNPACK for the operations XLA CPU hands to it"},
	{Name: "xnn-dot", Flags: "--xla_cpu_experimental_xnn_fusion_type=dot", Why: "XNNPACK fusions of dots"},
	{Name: "xnn-dot-elt", Flags: "--xla_cpu_experimental_xnn_fusion_type=dot,eltwise", Why: "XNNPACK fusions of dots and elementwise ops"},
	{Name: "xnn-all", Flags: "--xla_cpu_use_xnnpack=true --xla_cpu_experimental_xnn_fusion_type=dot,eltwise,reduce",
		Why: "XNNPACK fusions of dots, elementwise ops and reductions"},
	{Name: "xnn-graph", Flags: "--xla_cpu_use_xnnpack=true --xla_cpu_experimental_xnn_graph_fusion_mode=XNN_GRAPH_FUSION_MODE_GREEDY",
		Why: "XNNPACK subgraphs extracted greedily (XnnGraphFusion pass)"},
	{Name: "ynn-dot", Flags: "--xla_cpu_experimental_ynn_fusion_type=dot", Why: "YNNPACK fusions of dots"},
	{Name: "ynn-all", Flags: "--xla_cpu_experimental_ynn_fusion_type=dot,eltwise,reduce", Why: "YNNPACK fusions of dots, elementwise ops and reductions"},
	{Name: "onednn", Flags: "--xla_cpu_use_onednn=true", Why: "oneDNN rewrites of matmuls and convolutions"},
	{Name: "onednn-dot", Flags: "--xla_cpu_experimental_onednn_fusion_type=dot", Why: "oneDNN fusions of dots"},
	{Name: "onednn-cc", Flags: "--xla_cpu_use_onednn=true --xla_cpu_experimental_onednn_custom_call=true",
		Why: "oneDNN through its custom calls"},
	{Name: "fastmath", Flags: "--xla_cpu_enable_fast_math=true", Why: "LLVM fast math (changes results: not keepable, measured for reference)"},
	{Name: "eigen-1t", Flags: "--xla_cpu_multi_thread_eigen=false", Why: "single-threaded Eigen matmuls and convolutions"},
	{Name: "no-conc-sched", Flags: "--xla_cpu_enable_concurrency_optimized_scheduler=false", Why: "XLA's default (memory-optimising) scheduler"},
	{Name: "legacy-emit", Flags: "--xla_cpu_use_fusion_emitters=false", Why: "the older fusion code generator"},
	{Name: "avx2", Flags: "--xla_cpu_max_isa=AVX2", Why: "no AVX-512 in generated code"},
	{Name: "1cpu", CPUs: "0", Why: "intra-op thread pool of 1 thread (child pinned to one CPU with taskset)"},
}

var (
	setNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.+-]*$`)
	xlaFlagRE = regexp.MustCompile(`^--xla_[a-z0-9_]+(=\S*)?$`)
)

// ParseFlagSet parses a set given on the command line as "name=FLAGS", where FLAGS are
// space-separated --xla_... flags (possibly none); a leading "@CPUS:" in FLAGS pins the
// child to taskset's CPU list CPUS, as in "one=@0:" or "one-vw256=@0:--xla_cpu_prefer_vector_width=256".
func ParseFlagSet(spec string) (FlagSet, error) {
	name, flags, ok := strings.Cut(spec, "=")
	name = strings.TrimSpace(name)
	if !ok || !setNameRE.MatchString(name) {
		return FlagSet{}, fmt.Errorf("flag set %q: want NAME=FLAGS with NAME of letters, digits and _.+-", spec)
	}
	fs := FlagSet{Name: name, Why: "given with -add"}
	flags = strings.TrimSpace(flags)
	if rest, found := strings.CutPrefix(flags, "@"); found {
		cpus, after, ok := strings.Cut(rest, ":")
		if !ok || cpus == "" || strings.Trim(cpus, "0123456789,-") != "" {
			return FlagSet{}, fmt.Errorf("flag set %q: want @CPUS: (a taskset CPU list such as 0 or 0-1) before the flags", spec)
		}
		fs.CPUs, flags = cpus, strings.TrimSpace(after)
	}
	fields := strings.Fields(flags)
	for _, f := range fields {
		if !xlaFlagRE.MatchString(f) {
			return FlagSet{}, fmt.Errorf("flag set %q: %q is not an XLA flag (--xla_name or --xla_name=value)", spec, f)
		}
	}
	fs.Flags = strings.Join(fields, " ")
	return fs, nil
}

// SelectSets returns the sets named in the comma-separated list names (all of sets if it
// is empty) followed by extra, with the baseline first whether named or not.
func SelectSets(sets []FlagSet, names string, extra []FlagSet) ([]FlagSet, error) {
	byName := map[string]FlagSet{}
	for _, s := range sets {
		byName[s.Name] = s
	}
	var out []FlagSet
	seen := map[string]bool{}
	add := func(s FlagSet) error {
		if seen[s.Name] {
			return fmt.Errorf("flag set %q given twice", s.Name)
		}
		seen[s.Name] = true
		out = append(out, s)
		return nil
	}
	base, ok := byName[baselineName]
	if !ok {
		return nil, fmt.Errorf("no %q flag set to compare with", baselineName)
	}
	_ = add(base)
	if strings.TrimSpace(names) == "" {
		for _, s := range sets {
			if s.Name != baselineName {
				_ = add(s)
			}
		}
	} else {
		for _, n := range strings.Split(names, ",") {
			n = strings.TrimSpace(n)
			if n == "" || n == baselineName {
				continue
			}
			s, ok := byName[n]
			if !ok {
				known := make([]string, 0, len(sets))
				for _, s := range sets {
					known = append(known, s.Name)
				}
				return nil, fmt.Errorf("unknown flag set %q; known: %s", n, strings.Join(known, ", "))
			}
			if err := add(s); err != nil {
				return nil, err
			}
		}
	}
	for _, s := range extra {
		if err := add(s); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// childXLAFlags returns the $XLA_FLAGS a child runs with: the user's own $XLA_FLAGS
// (inherited) followed by the set's. mlx appends --xla_cpu_prefer_vector_width=512 in the
// child unless the result already sets the vector width.
func childXLAFlags(inherited string, fs FlagSet) string {
	return strings.TrimSpace(strings.TrimSpace(inherited) + " " + fs.Flags)
}

// rotate returns the indices 0..n-1 starting at r mod n: the order of round r.
func rotate(n, r int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = (i + r) % n
	}
	return out
}

// hasSet reports whether sets holds a set of that name.
func hasSet(sets []FlagSet, name string) bool {
	return slices.ContainsFunc(sets, func(s FlagSet) bool { return s.Name == name })
}
