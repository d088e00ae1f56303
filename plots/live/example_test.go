package live_test

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/goptlab/goptlab/mlx/history"
	"github.com/goptlab/goptlab/plots/live"
)

// Outside a notebook a View writes one progress line, rewritten in place with "\r".
func Example() {
	var term bytes.Buffer
	view := live.New(4, live.Output(&term), live.MinInterval(0))
	h := history.New("adam", "adam", 1)
	for step := 1; step <= 4; step++ {
		h.Add(history.Record{Step: step, Time: 0.5 * float64(step), Evals: int64(step), Loss: 1 / float64(step)})
		if err := view.Update(h); err != nil { // the training loop's callback
			fmt.Println(err)
		}
	}
	if err := view.Close(); err != nil {
		fmt.Println(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(term.String()), "\r") {
		fmt.Println(strings.TrimSpace(line))
	}
	// Output:
	// [=====>              ] 1/4  25% | 2.0 steps/s | ETA 0:02 | loss 1
	// [==========>         ] 2/4  50% | 2.0 steps/s | ETA 0:01 | loss 0.5
	// [===============>    ] 3/4  75% | 2.0 steps/s | ETA 0:01 | loss 0.3333
	// [====================] 4/4 100% | 2.0 steps/s | ETA 0:00 | loss 0.25
	// [====================] 4/4 100% | 2.0 steps/s | ETA 0:00 | loss 0.25
}
