// Package report gathers the result files of experiment families into one report:
// REPORT.md and index.html, with one row per claim (claim, measured value with its spread,
// verdict, seeds, backend, wall time) and the provenance of the run (commit, dirty flag,
// Go, GoMLX and go-xla versions, XLA plugin, CPU and GPU).
//
// `make reproduce` calls it through experiments/cmd/report once every experiment
// notebook has written its files (see experiments.Publish).
package report

import (
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/goptlab/goptlab/experiments"
)

// Family is what one family's result files say.
type Family struct {
	Family  string              `json:"family"`
	Size    experiments.Size    `json:"size"`
	Backend string              `json:"backend"`
	Claims  []experiments.Claim `json:"claims"`
	Timing  experiments.Timing  `json:"-"`
	// Notebook is the executed notebook's HTML export, relative to the report folder
	// ("" when there is none).
	Notebook string `json:"-"`
}

// Provenance says what produced a report.
type Provenance struct {
	Date        string
	Commit      string
	Dirty       bool
	Size        experiments.Size
	Go          string
	GoMLX       string
	GoXLA       string
	Backend     string // the backend's description, e.g. the XLA plugin and its version
	CPU         string
	GPU         string
	WallSeconds float64
}

// Report is a whole report.
type Report struct {
	Provenance Provenance
	Families   []Family
}

// Row is one claim of a report, as the tables show it.
type Row struct {
	Family, ID, Text, Measured, Interval, Verdict, Rule, Why, Backend, Notebook string
	Seeds                                                                       int
	WallSeconds                                                                 float64
}

// Collect reads every family folder of resultsDir (each with result.json and, if the
// family measured time, timing.json), in the order of the families' names. It fails on
// a folder without result.json, on a file that does not parse, and on a claim without a
// judgement: a report must not silently drop a claim.
func Collect(resultsDir string) ([]Family, error) {
	entries, err := os.ReadDir(resultsDir)
	if err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	var fams []Family
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		dir := filepath.Join(resultsDir, e.Name())
		var f Family
		if err := readJSON(filepath.Join(dir, "result.json"), &f); err != nil {
			return nil, err
		}
		if f.Family == "" {
			return nil, fmt.Errorf("report: %s: no \"family\" field", filepath.Join(dir, "result.json"))
		}
		switch err := readJSON(filepath.Join(dir, "timing.json"), &f.Timing); {
		case errors.Is(err, os.ErrNotExist):
		case err != nil:
			return nil, err
		}
		for _, c := range append(slices.Clone(f.Claims), f.Timing.Claims...) {
			if c.Judgement == nil {
				return nil, fmt.Errorf("report: family %s: claim %q has no judgement", f.Family, c.ID)
			}
		}
		fams = append(fams, f)
	}
	if len(fams) == 0 {
		return nil, fmt.Errorf("report: no family results in %s", resultsDir)
	}
	return fams, nil
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("report: %s: %w", path, err)
	}
	return nil
}

// Rows returns one row per claim, family by family, timing claims after the others.
func (r *Report) Rows() []Row {
	var rows []Row
	for _, f := range r.Families {
		for _, c := range append(slices.Clone(f.Claims), f.Timing.Claims...) {
			j := c.Judgement
			rows = append(rows, Row{
				Family: f.Family, ID: c.ID, Text: c.Text,
				Measured: fmt.Sprintf("%s (mean %s ± %s, range %s to %s)", num(float64(j.Summary.Median)),
					num(float64(j.Summary.Mean)), num(float64(j.Summary.SD)), num(float64(j.Summary.Min)), num(float64(j.Summary.Max))),
				Interval: fmt.Sprintf("[%s, %s]", num(float64(j.Interval.Lo)), num(float64(j.Interval.Hi))),
				Verdict:  string(j.Verdict), Rule: j.Stated, Why: j.Why, Seeds: j.Summary.N,
				Backend: f.Backend, WallSeconds: f.Timing.WallSeconds, Notebook: f.Notebook,
			})
		}
	}
	return rows
}

func num(x float64) string { return fmt.Sprintf("%.4g", x) }

// WriteMarkdown writes REPORT.md.
func (r *Report) WriteMarkdown(w io.Writer) error {
	p := r.Provenance
	var b strings.Builder
	fmt.Fprintf(&b, "# Reproduction report, %s\n\n", p.Date)
	fmt.Fprintf(&b, "Every claim below was judged by a rule fixed in code before the run (package\n"+
		"experiments/verdict): a 95%% bootstrap interval of the median over seeds against the claim's bound.\n\n")
	b.WriteString("| family | claim | measured: median (mean ± sd, range) | 95% interval | verdict | seeds | backend | family wall time |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|\n")
	for _, row := range r.Rows() {
		fmt.Fprintf(&b, "| %s | %s: %s | %s | %s | **%s** | %d | %s | %.0f s |\n", row.Family, row.ID, mdEscape(row.Text),
			row.Measured, row.Interval, row.Verdict, row.Seeds, row.Backend, row.WallSeconds)
	}
	b.WriteString("\n## Rules\n\n")
	for _, row := range r.Rows() {
		fmt.Fprintf(&b, "- %s/%s: %s Verdict: %s, since %s.\n", row.Family, row.ID, mdEscape(row.Rule), row.Verdict, mdEscape(row.Why))
	}
	b.WriteString("\n## Provenance\n\n")
	dirty := "no"
	if p.Dirty {
		dirty = "yes (uncommitted changes)"
	}
	for _, kv := range [][2]string{
		{"commit", p.Commit}, {"uncommitted changes", dirty}, {"size", string(p.Size)},
		{"Go", p.Go}, {"GoMLX", p.GoMLX}, {"go-xla", p.GoXLA}, {"backend", p.Backend},
		{"CPU", p.CPU}, {"GPU", p.GPU}, {"wall time", fmt.Sprintf("%.0f s", p.WallSeconds)},
	} {
		fmt.Fprintf(&b, "- %s: %s\n", kv[0], mdEscape(kv[1]))
	}
	b.WriteString("\n## Notebooks\n\n")
	for _, f := range r.Families {
		if f.Notebook != "" {
			fmt.Fprintf(&b, "- [%s](%s)\n", f.Family, f.Notebook)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func mdEscape(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ").Replace(s)
}

var page = template.Must(template.New("report").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Reproduction report {{.Provenance.Date}}</title>
<style>
body{font-family:system-ui,sans-serif;margin:2em;max-width:80em}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3em .6em;vertical-align:top}
.supports{background:#e3f6e3}.does-not-support{background:#fbe3e3}.inconclusive{background:#f6f3dc}
</style></head><body>
<h1>Reproduction report, {{.Provenance.Date}}</h1>
<p>Every claim was judged by a rule fixed in code before the run: a 95% bootstrap interval of the median over seeds against the claim's bound.</p>
<table><tr><th>family</th><th>claim</th><th>measured: median (mean ± sd, range)</th><th>95% interval</th><th>verdict</th><th>seeds</th><th>backend</th><th>family wall time</th></tr>
{{range .Rows}}<tr class="{{.Class}}"><td>{{if .Notebook}}<a href="{{.Notebook}}">{{.Family}}</a>{{else}}{{.Family}}{{end}}</td><td><b>{{.ID}}</b>: {{.Text}}<br><small>{{.Rule}} ({{.Why}})</small></td><td>{{.Measured}}</td><td>{{.Interval}}</td><td><b>{{.Verdict}}</b></td><td>{{.Seeds}}</td><td>{{.Backend}}</td><td>{{printf "%.0f" .WallSeconds}} s</td></tr>
{{end}}</table>
<h2>Provenance</h2><ul>
<li>commit {{.Provenance.Commit}}{{if .Provenance.Dirty}} (with uncommitted changes){{end}}</li>
<li>size {{.Provenance.Size}}</li><li>Go {{.Provenance.Go}}, GoMLX {{.Provenance.GoMLX}}, go-xla {{.Provenance.GoXLA}}</li>
<li>backend {{.Provenance.Backend}}</li><li>CPU {{.Provenance.CPU}}</li><li>GPU {{.Provenance.GPU}}</li>
<li>wall time {{printf "%.0f" .Provenance.WallSeconds}} s</li></ul>
</body></html>
`))

// WriteHTML writes index.html: the same table as REPORT.md, each family linking to its
// notebook's HTML export.
func (r *Report) WriteHTML(w io.Writer) error {
	type htmlRow struct {
		Row
		Class string
	}
	var rows []htmlRow
	for _, row := range r.Rows() {
		rows = append(rows, htmlRow{row, strings.ReplaceAll(row.Verdict, " ", "-")})
	}
	return page.Execute(w, struct {
		Provenance Provenance
		Rows       []htmlRow
	}{r.Provenance, rows})
}
