package experiments

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/goptlab/goptlab/mlx/history"
)

// Environment variables through which `make reproduce` tells the experiment notebooks what
// to run and where their result files go.
const (
	// SizeEnv names the size the notebooks run ("tiny", "default" or "paper").
	SizeEnv = "GOPTLAB_EXPERIMENT_SIZE"
	// ResultsEnv names the folder in which each family's files are written, one
	// sub-folder per family.
	ResultsEnv = "GOPTLAB_RESULTS_DIR"
)

// SizeFromEnv returns the size named by $GOPTLAB_EXPERIMENT_SIZE, or def when it is unset
// or empty. A notebook calls it so that `make reproduce SIZE=...` picks its size.
func SizeFromEnv(def Size) (Size, error) {
	s := os.Getenv(SizeEnv)
	if s == "" {
		return def, nil
	}
	size, err := ParseSize(s)
	if err != nil {
		return "", fmt.Errorf("$%s: %w", SizeEnv, err)
	}
	return size, nil
}

// Publish writes a family's files (see [WriteFiles]) into $GOPTLAB_RESULTS_DIR/family and
// returns that folder. When $GOPTLAB_RESULTS_DIR is unset or empty it writes nothing and
// returns "": a notebook run by hand keeps its results in the notebook.
func Publish(family string, result any, timing Timing, histories []*history.History) (string, error) {
	root := os.Getenv(ResultsEnv)
	if root == "" {
		return "", nil
	}
	if family == "" || strings.ContainsAny(family, `/\`) || family == "." || family == ".." {
		return "", fmt.Errorf("experiments.Publish: family %q is not a folder name", family)
	}
	dir := filepath.Join(root, family)
	if err := WriteFiles(dir, result, timing, histories); err != nil {
		return "", fmt.Errorf("experiments.Publish(%s): %w", family, err)
	}
	return dir, nil
}

// WriteVerdicts writes one line per claim: its id, verdict, the per-seed summary and the
// bootstrap interval, then the rule it was judged by.
func WriteVerdicts(w io.Writer, claims []Claim) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "claim\tverdict\tmeasured (per seed)\tinterval of the median")
	for _, c := range claims {
		if c.Judgement == nil {
			return fmt.Errorf("experiments.WriteVerdicts: claim %q has no judgement", c.ID)
		}
		j := c.Judgement
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", c.ID, j.Verdict, j.Summary, j.Interval)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, c := range claims {
		if _, err := fmt.Fprintf(w, "- %s: %s %s.\n", c.ID, c.Judgement.Stated, c.Judgement.Why); err != nil {
			return err
		}
	}
	return nil
}
