package report

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/goptlab/goptlab/experiments"
	"github.com/goptlab/goptlab/experiments/verdict"
)

type fakeResult struct {
	Family  string              `json:"family"`
	Size    experiments.Size    `json:"size"`
	Backend string              `json:"backend"`
	Claims  []experiments.Claim `json:"claims"`
	Extra   []float64           `json:"extra"`
}

func claim(t *testing.T, id string, values ...float64) experiments.Claim {
	t.Helper()
	j, err := verdict.Rule{Quantity: id + " ratio", Direction: verdict.AtMost, Bound: 0.5}.Judge(values, 1)
	if err != nil {
		t.Fatal(err)
	}
	return experiments.Claim{ID: id, Text: "the " + id + " | claim", Judgement: j}
}

func TestCollectAndWrite(t *testing.T) {
	dir := t.TempDir()
	results := filepath.Join(dir, "results")
	write := func(family string, claims []experiments.Claim, timing experiments.Timing) {
		res := fakeResult{Family: family, Size: experiments.Tiny, Backend: "xla", Claims: claims, Extra: []float64{1}}
		if err := experiments.WriteFiles(filepath.Join(results, family), res, timing, nil); err != nil {
			t.Fatal(err)
		}
	}
	write("zeta", []experiments.Claim{claim(t, "a", 0.1, 0.2, 0.3, 0.2, 0.1)}, experiments.Timing{WallSeconds: 12})
	write("alpha", []experiments.Claim{claim(t, "b", 0.9, 0.8, math.Inf(1), 0.9, 0.7)},
		experiments.Timing{Claims: []experiments.Claim{claim(t, "time", 0.4, 0.6)}, WallSeconds: 3})
	fams, err := Collect(results)
	if err != nil {
		t.Fatal(err)
	}
	if len(fams) != 2 || fams[0].Family != "alpha" || fams[1].Family != "zeta" || fams[0].Timing.WallSeconds != 3 {
		t.Fatalf("Collect: %+v", fams)
	}
	r := &Report{Families: fams, Provenance: Provenance{Date: "2026-11-30", Commit: "abc123", Dirty: true, Size: experiments.Tiny}}
	rows := r.Rows()
	if len(rows) != 3 || rows[0].ID != "b" || rows[1].ID != "time" || rows[2].ID != "a" {
		t.Fatalf("rows: %+v", rows)
	}
	if rows[0].Verdict != string(verdict.DoesNotSupport) || rows[2].Verdict != string(verdict.Supports) || rows[1].Verdict != string(verdict.Inconclusive) {
		t.Errorf("verdicts: %s, %s, %s", rows[0].Verdict, rows[1].Verdict, rows[2].Verdict)
	}
	var md, page bytes.Buffer
	if err := r.WriteMarkdown(&md); err != nil {
		t.Fatal(err)
	}
	if err := r.WriteHTML(&page); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| alpha | b: the b \\| claim |", "**does not support**", "+Inf", "abc123", "uncommitted changes: yes", "| 3 s |"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("REPORT.md lacks %q:\n%s", want, md.String())
		}
	}
	for _, want := range []string{`class="does-not-support"`, `class="supports"`, "the b | claim", "abc123 (with uncommitted changes)"} {
		if !strings.Contains(page.String(), want) {
			t.Errorf("index.html lacks %q", want)
		}
	}
}

func TestCollectRefusesIncompleteResults(t *testing.T) {
	dir := t.TempDir()
	if _, err := Collect(dir); err == nil || !strings.Contains(err.Error(), "no family results") {
		t.Errorf("empty folder: err = %v", err)
	}
	if err := os.Mkdir(filepath.Join(dir, "adan"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := Collect(dir); err == nil || !strings.Contains(err.Error(), "result.json") {
		t.Errorf("no result.json: err = %v", err)
	}
	for body, want := range map[string]string{
		`{"family": "adan", "claims": [{"id": "x"}]}`: "no judgement",
		`{"claims": []}`: "no \"family\"",
		`{"family": `:    "result.json",
	} {
		if err := os.WriteFile(filepath.Join(dir, "adan", "result.json"), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := Collect(dir); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want %q", body, err, want)
		}
	}
}
