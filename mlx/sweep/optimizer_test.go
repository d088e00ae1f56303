package sweep

import (
	"strings"
	"testing"

	"github.com/goptlab/goptlab/mlx/optim"
)

func TestOptimizerByName(t *testing.T) {
	for _, name := range Names() {
		opt, err := Optimizer(name, Params{"lr": 0.5})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if opt.Name() == "" {
			t.Errorf("%s: empty Name()", name)
		}
		params, err := ParamNames(name)
		if err != nil || len(params) < 2 {
			t.Errorf("%s: ParamNames = %v, %v", name, params, err)
		}
	}
	opt, err := Optimizer("adam", Params{"lr": 1e-3, "beta2": 0.99, "amsgrad": 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := opt.(*optim.Adam); !ok {
		t.Fatalf("adam gave %T", opt)
	}
	if _, err := Optimizer("sgd", Params{"nesterov": 0, "momentum": 0}); err != nil {
		t.Fatalf("plain SGD: %v", err)
	}
	s, err := Stepper("adan", Params{"lr": 0.1})
	if err != nil || s.Name() != "adan" {
		t.Fatalf("Stepper: %v, %v", s, err)
	}
}

func TestOptimizerErrors(t *testing.T) {
	for _, c := range []struct {
		name   string
		params Params
		want   string
	}{
		{"adamm", nil, `unknown optimizer "adamm": use one of adabelief, adahessian, adam,`},
		{"adam", Params{"momentum": 0.9}, `unknown hyperparameter "momentum": adam accepts amsgrad, beta1, beta2,`},
		{"adam", Params{"lr": -1}, "LR=-1"},
		{"adam", Params{"beta2": 1}, "Beta2=1 is out of range"},
		{"sgd", Params{"nesterov": 0.5}, "nesterov: must be 0 or 1"},
		{"adahessian", Params{"probes": 1.5}, "probes: must be a whole number"},
	} {
		_, err := Optimizer(c.name, c.params)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Optimizer(%q, %v): error %v, want one containing %q", c.name, c.params, err, c.want)
		}
	}
	if _, err := ParamNames("nope"); err == nil {
		t.Error("ParamNames accepted an unknown optimizer")
	}
}

func TestGrid(t *testing.T) {
	runs := Grid("adam", map[string][]float64{"lr": {0.1, 0.01}, "beta2": {0.9, 0.99}}, 1, 2)
	if len(runs) != 8 {
		t.Fatalf("got %d runs, want 8", len(runs))
	}
	if r := runs[0]; r.Label() != "adam beta2=0.9 lr=0.1" || r.Seed != 1 || runs[1].Seed != 2 || runs[2].Params["lr"] != 0.01 {
		t.Fatalf("order: %+v", runs[:3])
	}
	runs[0].Params["lr"] = 7
	if runs[1].Params["lr"] != 0.1 {
		t.Fatal("runs share their Params map")
	}
	if d := Grid("sgd", nil, 5); len(d) != 1 || d[0].Label() != "sgd" {
		t.Fatalf("defaults: %+v", d)
	}
}
