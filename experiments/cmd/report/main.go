// Command report writes REPORT.md and index.html into a report folder made by
// `make reproduce` (experiments/reproduce.py), from its results/<family>/ files, with the
// run's provenance.
//
//	go run ./experiments/cmd/report -dir REPORT_FOLDER [-wall SECONDS]
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"github.com/goptlab/goptlab/experiments"
	"github.com/goptlab/goptlab/experiments/report"
	"github.com/goptlab/goptlab/mlx"
)

func main() {
	dir := flag.String("dir", "", "the report folder (with results/<family>/ inside)")
	wall := flag.Float64("wall", 0, "the whole run's wall time in seconds")
	flag.Parse()
	if *dir == "" || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: report -dir REPORT_FOLDER [-wall SECONDS]")
		os.Exit(2)
	}
	if err := run(*dir, *wall); err != nil {
		fmt.Fprintln(os.Stderr, "report:", err)
		os.Exit(1)
	}
}

func run(dir string, wall float64) error {
	fams, err := report.Collect(filepath.Join(dir, "results"))
	if err != nil {
		return err
	}
	for i, f := range fams {
		rel := filepath.Join("html", f.Family+".html")
		if _, err := os.Stat(filepath.Join(dir, rel)); err == nil {
			fams[i].Notebook = rel
		}
	}
	size, err := experiments.SizeFromEnv(fams[0].Size)
	if err != nil {
		return err
	}
	r := &report.Report{Families: fams, Provenance: provenance(size, wall)}
	var md, page bytes.Buffer
	if err := r.WriteMarkdown(&md); err != nil {
		return err
	}
	if err := r.WriteHTML(&page); err != nil {
		return err
	}
	for name, b := range map[string][]byte{"REPORT.md": md.Bytes(), "index.html": page.Bytes()} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return err
		}
	}
	fmt.Printf("report: %d claims of %d families in %s\n", len(r.Rows()), len(fams), filepath.Join(dir, "REPORT.md"))
	return nil
}

func provenance(size experiments.Size, wall float64) report.Provenance {
	p := report.Provenance{Date: time.Now().UTC().Format("2006-01-02 15:04 UTC"), Size: size, Go: runtime.Version(), WallSeconds: wall}
	p.Commit = output("git", "rev-parse", "HEAD")
	p.Dirty = output("git", "status", "--porcelain", "--untracked-files=no") != ""
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, d := range info.Deps {
			switch d.Path {
			case "github.com/gomlx/gomlx":
				p.GoMLX = d.Version
			case "github.com/gomlx/go-xla":
				p.GoXLA = d.Version
			}
		}
	}
	if b, err := mlx.Backend(); err == nil {
		p.Backend = b.Name() + ": " + b.Description()
	} else {
		p.Backend = "unavailable: " + err.Error()
	}
	p.CPU = fmt.Sprintf("%s (%d logical CPUs)", cpuModel(), runtime.NumCPU())
	p.GPU = output("nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader")
	if p.GPU == "" {
		p.GPU = "none found (no nvidia-smi answer)"
	}
	return p
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if k, v, ok := strings.Cut(s.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}

// output runs a command and returns its trimmed standard output, or "" if it fails.
func output(name string, args ...string) string {
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}
