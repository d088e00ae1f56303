package train

import (
	"fmt"
	"testing"

	"github.com/goptlab/goptlab/mlx/data"
)

// TestRunnerBatchesAreDatasetBatches checks that the loop's batches, drawn from the
// epoch's permutation it keeps, are Dataset.Batch's, across epochs and after a jump (a
// resumed run starts at any step).
func TestRunnerBatchesAreDatasetBatches(t *testing.T) {
	ds, err := data.TwoSpirals(50, 1.5, 0.05, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, bs := range []int{1, 7, 50} {
		r := &runner{ds: ds, cfg: Config{Seed: 3, BatchSize: bs}}
		for _, k := range []int{0, 1, 2, 9, 8, 7, 40, 3, 120} {
			got, gotLabels, err := r.batch(k)
			if err != nil {
				t.Fatal(err)
			}
			want, wantLabels, err := ds.Batch(3, bs, k)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got[0].Value(), gotLabels[0].Value()) != fmt.Sprint(want[0].Value(), wantLabels[0].Value()) {
				t.Fatalf("batch size %d, batch %d: the loop's batch differs from Dataset.Batch's", bs, k)
			}
		}
	}
}
