package main

import (
	"math"
	"slices"
	"strings"
	"testing"
)

func TestParseFlagSet(t *testing.T) {
	for _, tc := range []struct {
		spec  string
		want  FlagSet
		error string
	}{
		{spec: "vw=--xla_cpu_prefer_vector_width=256", want: FlagSet{Name: "vw", Flags: "--xla_cpu_prefer_vector_width=256"}},
		{spec: "two= --xla_a=1   --xla_b ", want: FlagSet{Name: "two", Flags: "--xla_a=1 --xla_b"}},
		{spec: "none=", want: FlagSet{Name: "none"}},
		{spec: "one=@0:", want: FlagSet{Name: "one", CPUs: "0"}},
		{spec: "one-vw=@0-1:--xla_cpu_prefer_vector_width=256", want: FlagSet{Name: "one-vw", CPUs: "0-1", Flags: "--xla_cpu_prefer_vector_width=256"}},
		{spec: "noequals", error: "want NAME=FLAGS"},
		{spec: "bad name=--xla_a", error: "want NAME=FLAGS"},
		{spec: "x=-xla_a", error: "not an XLA flag"},
		{spec: "x=--gpu_thing=1", error: "not an XLA flag"},
		{spec: "x=@:--xla_a", error: "taskset CPU list"},
		{spec: "x=@a:--xla_a", error: "taskset CPU list"},
	} {
		got, err := ParseFlagSet(tc.spec)
		if tc.error != "" {
			if err == nil || !strings.Contains(err.Error(), tc.error) {
				t.Errorf("ParseFlagSet(%q) error = %v, want one containing %q", tc.spec, err, tc.error)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseFlagSet(%q): %v", tc.spec, err)
			continue
		}
		got.Why = ""
		if got != tc.want {
			t.Errorf("ParseFlagSet(%q) = %+v, want %+v", tc.spec, got, tc.want)
		}
	}
}

func TestBuiltinSetsParse(t *testing.T) {
	if builtinSets[0].Name != baselineName || builtinSets[0].Flags != "" || builtinSets[0].CPUs != "" {
		t.Fatalf("the first built-in set must be the empty baseline, got %+v", builtinSets[0])
	}
	seen := map[string]bool{}
	for _, s := range builtinSets {
		if seen[s.Name] {
			t.Errorf("built-in set %q twice", s.Name)
		}
		seen[s.Name] = true
		spec := s.Name + "=" + s.Flags
		if s.CPUs != "" {
			spec = s.Name + "=@" + s.CPUs + ":" + s.Flags
		}
		got, err := ParseFlagSet(spec)
		if err != nil {
			t.Errorf("built-in set %q does not parse back: %v", s.Name, err)
			continue
		}
		if got.Flags != s.Flags || got.CPUs != s.CPUs {
			t.Errorf("built-in set %q parses back as %+v", s.Name, got)
		}
	}
}

func TestSelectSets(t *testing.T) {
	sets := []FlagSet{{Name: baselineName}, {Name: "a", Flags: "--xla_a"}, {Name: "b", Flags: "--xla_b"}}
	names := func(fs []FlagSet) []string {
		var out []string
		for _, s := range fs {
			out = append(out, s.Name)
		}
		return out
	}
	got, err := SelectSets(sets, "", nil)
	if err != nil || !slices.Equal(names(got), []string{baselineName, "a", "b"}) {
		t.Errorf("all sets: %v, %v", names(got), err)
	}
	got, err = SelectSets(sets, "b, baseline", []FlagSet{{Name: "x"}})
	if err != nil || !slices.Equal(names(got), []string{baselineName, "b", "x"}) {
		t.Errorf("b and an extra: %v, %v", names(got), err)
	}
	if _, err := SelectSets(sets, "c", nil); err == nil || !strings.Contains(err.Error(), "known: baseline, a, b") {
		t.Errorf("unknown set: error %v", err)
	}
	if _, err := SelectSets(sets, "a", []FlagSet{{Name: "a"}}); err == nil {
		t.Error("a set given twice: no error")
	}
	if _, err := SelectSets(sets[1:], "", nil); err == nil {
		t.Error("no baseline: no error")
	}
}

func TestChildXLAFlags(t *testing.T) {
	if got := childXLAFlags(" --xla_user=1 ", FlagSet{Flags: "--xla_b=2"}); got != "--xla_user=1 --xla_b=2" {
		t.Errorf("got %q", got)
	}
	if got := childXLAFlags("", FlagSet{}); got != "" {
		t.Errorf("baseline with nothing inherited: got %q", got)
	}
}

func TestRotate(t *testing.T) {
	if got := rotate(4, 5); !slices.Equal(got, []int{1, 2, 3, 0}) {
		t.Errorf("rotate(4, 5) = %v", got)
	}
	if got := rotate(3, 0); !slices.Equal(got, []int{0, 1, 2}) {
		t.Errorf("rotate(3, 0) = %v", got)
	}
}

func TestMedianAndRatios(t *testing.T) {
	if got := median([]float64{3, 1, 2}); got != 2 {
		t.Errorf("odd median = %v", got)
	}
	if got := median([]float64{4, 1, 3, 2}); got != 2.5 {
		t.Errorf("even median = %v", got)
	}
	if !math.IsNaN(median(nil)) {
		t.Error("median of nothing is not NaN")
	}
	xs := []float64{3, 1, 2}
	median(xs)
	if !slices.Equal(xs, []float64{3, 1, 2}) {
		t.Errorf("median reordered its argument: %v", xs)
	}
	ps := []PairSample{{Round: 0, AMS: 10, BMS: 5}, {Round: 1, AMS: 20, BMS: 30}, {Round: 2, AMS: 40, BMS: 20}}
	if got := pairRatios(ps); !slices.Equal(got, []float64{0.5, 1.5, 0.5}) {
		t.Errorf("pairRatios = %v", got)
	}
	if got := pairTimes(ps, false); !slices.Equal(got, []float64{10, 20, 40}) {
		t.Errorf("A times = %v", got)
	}
	if got := pairTimes(ps, true); !slices.Equal(got, []float64{5, 30, 20}) {
		t.Errorf("B times = %v", got)
	}
}

func TestCompareValues(t *testing.T) {
	base := []Sample{{Round: -1, Value: 2, Bits: 1}, {Round: 0, Value: 1, Bits: 2}, {Round: 1, Value: 0, Bits: 3}}
	same := []Sample{{Round: -1, Value: 2, Bits: 1}, {Round: 0, Value: 1, Bits: 2}, {Round: 1, Value: 0, Bits: 3}}
	if d := compareValues(same, base); !d.BitEqual() || d.Compared != 3 || d.MaxRel != 0 {
		t.Errorf("same values: %+v", d)
	}
	off := []Sample{{Round: -1, Value: 2.002, Bits: 9}, {Round: 0, Value: 1, Bits: 2}, {Round: 1, Value: 1e-9, Bits: 8}, {Round: 7, Value: 5, Bits: 5}}
	d := compareValues(off, base)
	if d.BitEqual() || d.Compared != 3 || d.Equal != 1 || math.Abs(d.MaxRel-0.001) > 1e-12 {
		t.Errorf("different values: %+v", d)
	}
	if d := compareValues(nil, base); d.BitEqual() {
		t.Error("nothing compared counts as equal")
	}
	if got := relDiff(math.NaN(), 1); !math.IsInf(got, 1) {
		t.Errorf("relDiff(NaN, 1) = %v", got)
	}
	if got := relDiff(math.NaN(), math.NaN()); got != 0 {
		t.Errorf("relDiff(NaN, NaN) = %v", got)
	}
	if got := relDiff(math.Inf(1), math.Inf(-1)); !math.IsInf(got, 1) {
		t.Errorf("relDiff(+Inf, -Inf) = %v", got)
	}
}

func TestParseResult(t *testing.T) {
	v, bits, err := parseResult("f32:3fc00000")
	if err != nil || v != 1.5 || bits != 0x3fc00000 {
		t.Errorf("f32: %v %x %v", v, bits, err)
	}
	v, bits, err = parseResult("f64:c004000000000000")
	if err != nil || v != -2.5 || bits != 0xc004000000000000 {
		t.Errorf("f64: %v %x %v", v, bits, err)
	}
	v, _, err = parseResult("f32:7fc00000")
	if err != nil || !math.IsNaN(v) {
		t.Errorf("NaN: %v %v", v, err)
	}
	for _, bad := range []string{"", "f32", "f16:0000", "f32:3fc0", "f32:zzzzzzzz", "f64:3fc00000"} {
		if _, _, err := parseResult(bad); err == nil {
			t.Errorf("parseResult(%q): no error", bad)
		}
	}
}

func TestReplaceSection(t *testing.T) {
	beginMarker, endMarker := markers("all")
	doc, err := replaceSection("# Title\n\nkept text", "all", "results 1\n")
	if err != nil {
		t.Fatal(err)
	}
	want := "# Title\n\nkept text\n" + beginMarker + "\nresults 1\n" + endMarker + "\n"
	if doc != want {
		t.Fatalf("first write:\n%s\nwant:\n%s", doc, want)
	}
	doc, err = replaceSection(doc+"conclusion after\n", "all", "results 2")
	if err != nil {
		t.Fatal(err)
	}
	want = "# Title\n\nkept text\n" + beginMarker + "\nresults 2\n" + endMarker + "\nconclusion after\n"
	if doc != want {
		t.Fatalf("second write:\n%s\nwant:\n%s", doc, want)
	}
	// Another label's section goes after, and leaves this one alone.
	two, err := replaceSection(doc, "other", "results 3")
	if err != nil {
		t.Fatal(err)
	}
	b2, e2 := markers("other")
	if want := doc + b2 + "\nresults 3\n" + e2 + "\n"; two != want {
		t.Fatalf("other label:\n%s\nwant:\n%s", two, want)
	}
	if _, err := replaceSection(endMarker+"\n"+beginMarker+"\n", "all", "x"); err == nil {
		t.Error("markers out of order: no error")
	}
	if _, err := replaceSection(beginMarker+"\n", "all", "x"); err == nil {
		t.Error("no end marker: no error")
	}
}

func TestSummarizeHLO(t *testing.T) {
	m1 := `  %dot.1 = f32[2,2]{1,0} dot(%a, %b), lhs_contracting_dims={1}
  %xnn_fusion = f32[2,2]{1,0} fusion(%a, %b), kind=kCustom, calls=%f, backend_config={"fusion_config":{"kind":"__xnn_fusion"}}
  %convolution.5 = f32[64,28,28,32]{3,2,1,0} convolution(%x, %k), window={size=3x3}`
	m2 := `  %cc = f32[2] custom-call(%a), custom_call_target="__onednn$matmul"
  %fusion = f32[2] fusion(%a), kind=kLoop, calls=%g
  // a comment about dot(x) that is no instruction`
	s := summarizeHLO([]string{m1, m2})
	if s.Modules != 2 || s.Dots != 1 || s.Convs != 1 || s.Library["__xnn_fusion"] != 1 || s.CustomCalls["__onednn$matmul"] != 1 {
		t.Errorf("summary %+v", s)
	}
	if got, want := s.String(), "xnn_fusion 1, onednn$matmul 1, dot 1, conv 1"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if summarizeHLO([]string{m1, m2}).Hash != s.Hash || summarizeHLO([]string{m1}).Hash == s.Hash {
		t.Error("the hash does not identify the text")
	}
}

// TestVerdict checks the rule on made-up figures: a set 20% faster on the CNN with the
// baseline's results is kept; the same times with other results, or a case 10% slower,
// or a failed child, are not.
func TestVerdict(t *testing.T) {
	traj := func(bits uint64) map[string][]Sample {
		m := map[string][]Sample{}
		for _, cs := range []string{caseCNN, caseMLP} {
			for step := range 3 {
				m[cs] = append(m[cs], Sample{Round: step, Value: float64(bits + uint64(step)), Bits: bits + uint64(step)})
			}
		}
		return m
	}
	r := &Run{Cases: []string{caseCNN, caseMLP}, Sets: 5, Results: []*Result{
		{Set: FlagSet{Name: baselineName}, Trajectory: traj(1)},
		{Set: FlagSet{Name: "fast"}, Trajectory: traj(1)},
		{Set: FlagSet{Name: "changed"}, Trajectory: traj(2)},
		{Set: FlagSet{Name: "slower"}, Trajectory: traj(1)},
		{Set: FlagSet{Name: "failed"}, Err: "boom"},
	}}
	times := map[string][2]float64{"fast": {8, 10}, "changed": {8, 10}, "slower": {8, 11}}
	for i, res := range r.Results[1:4] {
		for k, cs := range r.Cases {
			p := &Pair{A: Target{0, cs}, B: Target{i + 1, cs}}
			for round := range 3 {
				p.Samples = append(p.Samples, PairSample{Round: round, AMS: 10, BMS: times[res.Set.Name][k]})
			}
			r.Pairs = append(r.Pairs, p)
		}
	}
	for i, want := range []string{"baseline", "**keep**", "results off", "slower by more than 5%: mlp", "failed"} {
		if got := r.verdict(i); !strings.Contains(got, want) {
			t.Errorf("verdict(%s) = %q, want it to contain %q", r.Results[i].Set.Name, got, want)
		}
	}
	if st := r.stats(0, caseCNN); !st.ok || st.medianMS != 10 || st.ratio != 1 || !st.diff.BitEqual() {
		t.Errorf("baseline stats %+v", st)
	}
	if st := r.stats(3, caseMLP); !st.ok || st.medianMS != 11 || math.Abs(st.ratio-1.1) > 1e-12 {
		t.Errorf("slower's MLP stats %+v", st)
	}
}

func TestRelativize(t *testing.T) {
	msg := "mlx: running on XLA CPU (xla:/home/u/repo/.xla/p.so): x"
	if got, want := relativize(msg, "/home/u/repo"), "mlx: running on XLA CPU (xla:.xla/p.so): x"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if got := relativize(msg, ""); got != msg {
		t.Errorf("no root: got %q", got)
	}
}
