package history_test

import (
	"fmt"
	"math"
	"os"
	"strings"

	"github.com/goptlab/goptlab/mlx/history"
)

func Example() {
	h := history.New("adam lr=1e-3", "adam", 42)
	for step := 1; step <= 3; step++ {
		h.Add(history.Record{
			Step:    step,
			Time:    0.5 * float64(step),
			Evals:   int64(step),
			Loss:    1 / float64(step),
			Metrics: map[string]float64{"lr": 1e-3},
		})
	}
	h.Add(history.Record{Step: 4, Time: 2, Evals: 4, Loss: math.NaN()}) // a diverged step
	if err := history.WriteCSV(os.Stdout, h); err != nil {
		fmt.Println(err)
	}
	// Output:
	// name,optimizer,seed,step,time,evals,loss,lr
	// adam lr=1e-3,adam,42,1,0.5,1,1,0.001
	// adam lr=1e-3,adam,42,2,1,2,0.5,0.001
	// adam lr=1e-3,adam,42,3,1.5,3,0.3333333333333333,0.001
	// adam lr=1e-3,adam,42,4,2,4,NaN,
}

func ExampleReadJSON() {
	in := `{"version":1,"runs":[{"name":"sgd","optimizer":"sgd","seed":1,
	  "records":[{"step":1,"time":0.1,"evals":1,"loss":2.5},{"step":2,"time":0.2,"evals":2,"loss":"NaN"}]}]}`
	hs, err := history.ReadJSON(strings.NewReader(in))
	if err != nil {
		fmt.Println(err)
		return
	}
	loss, _ := hs[0].Column(history.KeyLoss)
	fmt.Println(hs[0].Label(), loss)

	_, err = history.ReadJSON(strings.NewReader(`{"version":1,"runs":[{"records":[{"step":0,"time":0,"evals":0,"loss":1}]}]}`))
	fmt.Println(err)
	// Output:
	// sgd [2.5 NaN]
	// history.ReadJSON: run #0: history "run": record 0: step 0 < 1
}

func ExampleSynthetic() {
	h, err := history.Synthetic(history.SyntheticConfig{
		Name: "adam", Optimizer: "adam", Seed: 1,
		Steps: 1000, LogEvery: 100, Loss0: 2.3, Floor: 0.05, Rate: 0.005, Noise: 0.05, LR: 1e-3,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	last, _ := h.Last()
	fmt.Println(h.Len(), last.Step, h.MetricNames())
	// Output:
	// 10 1000 [accuracy lr]
}
