package plots

import (
	"math"
	"strings"
	"testing"

	"github.com/goptlab/goptlab/mlx/history"
)

// gd runs gradient descent with momentum beta on f's analytic gradient grad from (x, y).
func gd(grad func(x, y float64) (float64, float64), x, y, lr, beta float64, steps int) (xs, ys []float64) {
	vx, vy := 0.0, 0.0
	xs, ys = []float64{x}, []float64{y}
	for range steps {
		gx, gy := grad(x, y)
		vx, vy = beta*vx+gx, beta*vy+gy
		x, y = x-lr*vx, y-lr*vy
		xs, ys = append(xs, x), append(ys, y)
	}
	return xs, ys
}

func rosenGrad(x, y float64) (float64, float64) {
	return -2*(1-x) - 400*x*(y-x*x), 200 * (y - x*x)
}

func TestSurfaceRosenbrock(t *testing.T) {
	x1, y1 := gd(rosenGrad, -1.5, 2, 1e-3, 0, 300)
	x2, y2 := gd(rosenGrad, -1.5, 2, 1e-3, 0.9, 300)
	trajs := []Trajectory{{Name: "sgd", X: x1, Y: y1}, {Name: "momentum", X: x2, Y: y2}}
	f, err := Surface(Rosenbrock, Range{-2, 2}, Range{-1, 3}, trajs, Minimum(1, 1), Title("Rosenbrock"))
	if err != nil {
		t.Fatal(err)
	}
	r := render(t, f, "surface_rosenbrock")
	if got := strings.Join(f.Labels(), "|"); got != "sgd (300 steps)|momentum (300 steps)|minimum (1, 1)" {
		t.Errorf("labels = %q", got)
	}
	p := f.Plots()[0]
	if p.X.Min != -2 || p.X.Max != 2 || p.Y.Min != -1 || p.Y.Max != 3 {
		t.Errorf("axes = [%v,%v]×[%v,%v], want [-2,2]×[-1,3]", p.X.Min, p.X.Max, p.Y.Min, p.Y.Max)
	}
	for _, opt := range []string{"sgd", "momentum"} {
		if n := countColor(r.img, StyleFor(opt)); n < 100 {
			t.Errorf("%d pixels of %s's colour: trajectory not visible", n, opt)
		}
	}
	// The colour bar is labelled with round values of f.
	for _, tick := range []string{"f(x, y)", ">1<", ">100<"} {
		if !strings.Contains(r.svg, tick) {
			t.Errorf("SVG lacks %q", tick)
		}
	}
	if !strings.Contains(r.svg, "<image ") {
		t.Error("the heat map is not rasterized into the SVG")
	}
}

func TestSurfaceQuadratic(t *testing.T) {
	q := Quadratic(1, 10)
	grad := func(x, y float64) (float64, float64) { return x, 10 * y }
	x1, y1 := gd(grad, -4, 1.5, 0.18, 0, 40) // zig-zags across the narrow valley
	x2, y2 := gd(grad, -4, 1.5, 0.21, 0, 40) // lr > 2/10: leaves the plot
	f, err := Surface(q, Range{-5, 5}, Range{-2, 2}, []Trajectory{{Name: "gd lr=0.18", Optimizer: "sgd", X: x1, Y: y1},
		{Name: "gd lr=0.21", Optimizer: "adam", X: x2, Y: y2}}, LogColor(false), Levels(8), Minimum(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	render(t, f, "surface_quadratic")
	got := f.Labels()
	if got[0] != "gd lr=0.18 (40 steps)" || got[1] != "gd lr=0.21 (40 steps, leaves the plot)" {
		t.Errorf("labels = %q", got)
	}
}

func TestSurfaceBadInput(t *testing.T) {
	good := Range{-1, 1}
	cases := map[string]func() error{
		"nil f":       func() error { _, err := Surface(nil, good, good, nil); return err },
		"empty range": func() error { _, err := Surface(Rosenbrock, Range{1, 1}, good, nil); return err },
		"NaN range":   func() error { _, err := Surface(Rosenbrock, Range{math.NaN(), 1}, good, nil); return err },
		"constant f":  func() error { _, err := Surface(func(x, y float64) float64 { return 3 }, good, good, nil); return err },
		"all NaN f": func() error {
			_, err := Surface(func(x, y float64) float64 { return math.NaN() }, good, good, nil)
			return err
		},
		"mismatched": func() error {
			_, err := Surface(Rosenbrock, good, good, []Trajectory{{Name: "a", X: []float64{1}, Y: nil}})
			return err
		},
		"empty traj":     func() error { _, err := Surface(Rosenbrock, good, good, []Trajectory{{Name: "a"}}); return err },
		"bad resolution": func() error { _, err := Surface(Rosenbrock, good, good, nil, Resolution(1)); return err },
	}
	for name, fn := range cases {
		if err := fn(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	// Negative values are shifted for log colouring, not rejected.
	if _, err := Surface(func(x, y float64) float64 { return x - 5 }, good, good, nil); err != nil {
		t.Errorf("negative f: %v", err)
	}
}

func TestTrajectoryOf(t *testing.T) {
	h := history.New("adam", "adam", 0)
	h.Add(history.Record{Step: 1, Metrics: map[string]float64{"x": 1, "y": 2}})
	h.Add(history.Record{Step: 2, Metrics: map[string]float64{"x": 3, "y": 4}})
	tr, err := TrajectoryOf(h, "x", "y")
	if err != nil {
		t.Fatal(err)
	}
	if tr.Name != "adam" || len(tr.X) != 2 || tr.X[1] != 3 || tr.Y[1] != 4 {
		t.Errorf("trajectory = %+v", tr)
	}
	if _, err := TrajectoryOf(h, "x", "z"); err == nil {
		t.Error("missing metric: no error")
	}
}

// TestSurfaceTrajectoryLabels checks the legend notes: a trajectory that ends non-finite is
// "diverged" even if it left the plot before, and so is one without any finite point.
func TestSurfaceTrajectoryLabels(t *testing.T) {
	nan := math.NaN()
	f, err := Surface(Rosenbrock, Range{-2, 2}, Range{-1, 3}, []Trajectory{
		{Name: "out then NaN", Optimizer: "sgd", X: []float64{0, 5, nan}, Y: []float64{0, 0, nan}},
		{Name: "all NaN", Optimizer: "adam", X: []float64{nan, nan, nan}, Y: []float64{nan, nan, nan}},
		{Name: "out", Optimizer: "lion", X: []float64{0, 5}, Y: []float64{0, 0}},
	}, Resolution(20))
	if err != nil {
		t.Fatal(err)
	}
	want := "out then NaN (2 steps, diverged)|all NaN (2 steps, diverged)|out (1 steps, leaves the plot)"
	if got := strings.Join(f.Labels(), "|"); got != want {
		t.Errorf("labels = %q, want %q", got, want)
	}
}
