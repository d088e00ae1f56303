package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"time"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph" //nolint:staticcheck // GoMLX graph DSL.
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/goptlab/goptlab/mlx/data"
	"github.com/goptlab/goptlab/mlx/history"
	"github.com/goptlab/goptlab/mlx/models"
	"github.com/goptlab/goptlab/mlx/optim"
	"github.com/goptlab/goptlab/mlx/train"
)

// ModelSpec describes a model in the terms every system understands (bench/peer.py reads
// the same JSON).
type ModelSpec struct {
	// Kind is "mlp" or "cnn".
	Kind string `json:"kind"`
	// Dims are an MLP's widths, input first.
	Dims []int `json:"dims,omitempty"`
	// HW is a CNN's input side (one channel).
	HW int `json:"hw,omitempty"`
	// Channels are a CNN's convolution widths (3x3, same padding, each followed by ReLU and 2x2 max pooling).
	Channels []int `json:"channels,omitempty"`
	// Classes is a CNN's output width (one dense layer after the last pooling).
	Classes int `json:"classes,omitempty"`
}

// CaseSpec is one timed training step: a model, loss, batch size and optimizer.
type CaseSpec struct {
	ID    string    `json:"id"`
	Model ModelSpec `json:"model"`
	// Loss is "mse" (float targets) or "xent" (softmax cross-entropy on integer labels).
	Loss  string  `json:"loss"`
	Batch int     `json:"batch"`
	Opt   string  `json:"opt"`
	LR    float64 `json:"lr"`
	// Block is the number of steps timed together (one block per system per round).
	Block int `json:"block"`
}

func (m ModelSpec) inputDims() []int {
	if m.Kind == "mlp" {
		return []int{m.Dims[0]}
	}
	return []int{m.HW, m.HW, 1}
}

func (m ModelSpec) outputs() int {
	if m.Kind == "mlp" {
		return m.Dims[len(m.Dims)-1]
	}
	return m.Classes
}

// lossFn returns our loss for the case, built with mlx/models.
func (c CaseSpec) lossFn() (train.LossFn, error) {
	var fn models.Fn
	switch c.Model.Kind {
	case "mlp":
		if len(c.Model.Dims) < 2 {
			return nil, fmt.Errorf("case %s: an MLP needs at least 2 widths, got %v", c.ID, c.Model.Dims)
		}
		d := c.Model.Dims
		fn = models.MLPConfig{Hidden: d[1 : len(d)-1], Outputs: d[len(d)-1]}.Fn()
	case "cnn":
		fn = models.CNNConfig{Channels: c.Model.Channels, Outputs: c.Model.Classes}.Fn()
	default:
		return nil, fmt.Errorf("case %s: unknown model kind %q", c.ID, c.Model.Kind)
	}
	switch c.Loss {
	case "mse":
		return models.Regressor(fn), nil
	case "xent":
		return models.Classifier(fn), nil
	}
	return nil, fmt.Errorf("case %s: unknown loss %q", c.ID, c.Loss)
}

// stepper returns a fresh optimizer for the case, from mlx/optim.
func (c CaseSpec) stepper() (train.Stepper, error) {
	var err error
	switch c.Opt {
	case "adam":
		cfg := optim.DefaultAdam()
		cfg.LR = c.LR
		var o *optim.Adam
		o, err = optim.NewAdam(cfg)
		if err == nil {
			return train.FirstOrder(o, c.Opt), nil
		}
	case "adan":
		cfg := optim.DefaultAdan()
		cfg.LR = c.LR
		var o *optim.Adan
		o, err = optim.NewAdan(cfg)
		if err == nil {
			return train.FirstOrder(o, c.Opt), nil
		}
	case "adahessian":
		cfg := optim.DefaultAdaHessian()
		cfg.LR, cfg.Eps = c.LR, adaHessianEps
		var o *optim.AdaHessian
		o, err = optim.NewAdaHessian(cfg)
		if err == nil {
			return train.FirstOrder(o, c.Opt), nil
		}
	default:
		err = fmt.Errorf("unknown optimizer %q", c.Opt)
	}
	return nil, fmt.Errorf("case %s: %w", c.ID, err)
}

// adaHessianEps is the official AdaHessian's (and mlx/optim's) epsilon, set in every system
// (pytorch_optimizer's default is 1e-16).
const adaHessianEps = 1e-4

// dataset returns n random examples for the case: inputs and MSE targets uniform in [-1, 1),
// or class labels uniform in [0, classes).
func (c CaseSpec) dataset(n int, seed uint64) (*data.Dataset, error) {
	rng := rand.New(rand.NewPCG(seed, 1))
	in := c.Model.inputDims()
	size := 1
	for _, d := range in {
		size *= d
	}
	x := make([]float32, n*size)
	for i := range x {
		x[i] = rng.Float32()*2 - 1
	}
	out := c.Model.outputs()
	var label data.Column
	if c.Loss == "mse" {
		y := make([]float32, n*out)
		for i := range y {
			y[i] = rng.Float32()*2 - 1
		}
		label = data.Column{Dims: []int{out}, Float32: y}
	} else {
		y := make([]int32, n)
		for i := range y {
			y[i] = int32(rng.IntN(out))
		}
		label = data.Column{Dims: []int{1}, Int32: y}
	}
	return data.New(c.ID, []data.Column{{Dims: in, Float32: x}}, []data.Column{label})
}

// System is one of the compared ways to run a training step.
type System interface {
	// Setup builds (and compiles) the case's step, runs warm-up steps and returns the
	// model's parameter count.
	Setup(c CaseSpec, warmup int) (params int, err error)
	// Run runs steps steps of the case, reading the loss back after each, and returns the time taken.
	Run(id string, steps int) (time.Duration, error)
	// Drop releases the case.
	Drop(id string) error
	// Close releases everything.
	Close() error
}

// bareExec is GoMLX's model.Exec of the optimizer's step (the stepper's graph: the loss and
// the optimizer's UpdateGraph), on a batch transferred once: the floor that train.Run is
// measured against.
type bareExec struct {
	backend compute.Backend
	cases   map[string]*bareCase
}

type bareCase struct {
	exec *model.Exec
	x, y *tensors.Tensor
}

func newBareExec(backend compute.Backend) *bareExec {
	return &bareExec{backend: backend, cases: map[string]*bareCase{}}
}

func (b *bareExec) Setup(c CaseSpec, warmup int) (int, error) {
	lossFn, err := c.lossFn()
	if err != nil {
		return 0, err
	}
	stepper, err := c.stepper()
	if err != nil {
		return 0, err
	}
	ds, err := c.dataset(c.Batch, 1)
	if err != nil {
		return 0, err
	}
	inputs, labels := ds.All()
	store := model.NewStore()
	if err := train.SeedStore(store, 7); err != nil {
		return 0, err
	}
	exec, err := model.NewExec(b.backend, store, func(scope *model.Scope, x, y *Node) *Node {
		store.SetTraining(x.Graph(), true)
		return stepper.BuildStep(scope, lossFn, []*Node{x}, []*Node{y})
	})
	if err != nil {
		return 0, fmt.Errorf("case %s: bare exec: %w", c.ID, err)
	}
	bc := &bareCase{exec: exec, x: inputs[0], y: labels[0]}
	b.cases[c.ID] = bc
	if err := bc.steps(warmup); err != nil {
		return 0, fmt.Errorf("case %s: bare exec: %w", c.ID, err)
	}
	return trainableParams(store), nil
}

func (bc *bareCase) steps(n int) error {
	for range n {
		out, err := bc.exec.Exec(bc.x, bc.y)
		if err != nil {
			return err
		}
		if _, err := out[0].ValueSafe(); err != nil {
			return err
		}
		_ = out[0].FinalizeAll()
	}
	return nil
}

func (b *bareExec) Run(id string, steps int) (time.Duration, error) {
	bc, ok := b.cases[id]
	if !ok {
		return 0, fmt.Errorf("bare exec: unknown case %q", id)
	}
	start := time.Now()
	err := bc.steps(steps)
	return time.Since(start), err
}

func (b *bareExec) Drop(id string) error {
	if bc, ok := b.cases[id]; ok {
		bc.exec.Finalize()
		delete(b.cases, id)
	}
	return nil
}

func (b *bareExec) Close() error {
	for id := range b.cases {
		_ = b.Drop(id)
	}
	return nil
}

func trainableParams(store *model.Store) int {
	n := 0
	for v := range store.IterVariables() {
		if v.Trainable {
			n += v.Shape().Size()
		}
	}
	return n
}

// trainRun times mlx/train.Run as a user calls it, on a dataset of random examples: one
// Run per case, paused in its OnStep hook (LogEvery = the case's block) between the blocks
// the driver asks for, so that one compilation serves the whole benchmark and the blocks
// interleave with the other systems. A block's time runs from releasing the hook to its
// next call: the block's steps with everything Run does around them (batch gathering,
// transfers, finite checks, the history record).
type trainRun struct {
	backend compute.Backend
	cases   map[string]*runCase
	// loop sets Config.StepsPerExecution to the block length: a block is one execution.
	loop bool
}

type runCase struct {
	block  int
	resume chan struct{}
	ticks  chan time.Time
	done   chan error
	cancel context.CancelFunc
	store  *model.Store
}

func newTrainRun(backend compute.Backend, loop bool) *trainRun {
	return &trainRun{backend: backend, cases: map[string]*runCase{}, loop: loop}
}

func (t *trainRun) Setup(c CaseSpec, warmup int) (int, error) {
	lossFn, err := c.lossFn()
	if err != nil {
		return 0, err
	}
	stepper, err := c.stepper()
	if err != nil {
		return 0, err
	}
	// Enough examples for several distinct batches, as a real data set has.
	ds, err := c.dataset(8*c.Batch, 1)
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	rc := &runCase{block: c.Block, resume: make(chan struct{}), ticks: make(chan time.Time), done: make(chan error, 1),
		cancel: cancel, store: model.NewStore()}
	cfg := train.Config{
		Steps: train.MaxSteps, BatchSize: c.Batch, Seed: 7, LogEvery: c.Block, Name: c.ID, Context: ctx,
		StepsPerExecution: map[bool]int{false: 1, true: c.Block}[t.loop],
		OnStep: func(*history.History) error {
			select {
			case rc.ticks <- time.Now():
			case <-ctx.Done():
				return ctx.Err()
			}
			select {
			case <-rc.resume:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		},
	}
	go func() {
		_, err := train.Run(t.backend, rc.store, lossFn, ds, stepper, cfg)
		rc.done <- err
	}()
	t.cases[c.ID] = rc
	// The first block (compilation included) is the warm-up; then as many more as asked.
	for i := 0; i == 0 || i*c.Block < warmup; i++ {
		if i > 0 {
			if _, err := t.Run(c.ID, c.Block); err != nil {
				return 0, err
			}
			continue
		}
		select {
		case <-rc.ticks:
		case err := <-rc.done:
			delete(t.cases, c.ID)
			return 0, fmt.Errorf("case %s: train.Run stopped during warm-up: %w", c.ID, err)
		}
	}
	return trainableParams(rc.store), nil
}

func (t *trainRun) Run(id string, steps int) (time.Duration, error) {
	rc, ok := t.cases[id]
	if !ok {
		return 0, fmt.Errorf("train.Run: unknown case %q", id)
	}
	if steps != rc.block {
		return 0, fmt.Errorf("train.Run: case %q runs blocks of %d steps (its LogEvery), asked for %d", id, rc.block, steps)
	}
	start := time.Now()
	rc.resume <- struct{}{}
	select {
	case end := <-rc.ticks:
		return end.Sub(start), nil
	case err := <-rc.done:
		delete(t.cases, id)
		return 0, fmt.Errorf("case %s: train.Run stopped: %w", id, err)
	}
}

func (t *trainRun) Drop(id string) error {
	rc, ok := t.cases[id]
	if !ok {
		return nil
	}
	delete(t.cases, id)
	rc.cancel()
	err := <-rc.done
	if err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("case %s: train.Run: %w", id, err)
	}
	return nil
}

func (t *trainRun) Close() error {
	var errs []error
	for id := range t.cases {
		errs = append(errs, t.Drop(id))
	}
	return errors.Join(errs...)
}

// peer is a bench/peer.py worker (JAX or PyTorch) in a child process, spoken to in JSON lines.
type peer struct {
	name string
	cmd  *exec.Cmd
	in   io.WriteCloser
	out  *bufio.Scanner
	// Info is the worker's answer to "info": versions and thread settings.
	Info map[string]any
}

// peerEnv is the environment of the Python workers: two threads, OpenMP threads that sleep
// when idle (the default spinning collapses PyTorch on a busy machine and would flatter the
// others), CPU only.
var peerEnv = []string{
	"OMP_WAIT_POLICY=PASSIVE", "OMP_NUM_THREADS=2", "MKL_NUM_THREADS=2", "OPENBLAS_NUM_THREADS=2",
	"BENCH_THREADS=2", "CUDA_VISIBLE_DEVICES=", "JAX_PLATFORMS=cpu", "PYTHONUNBUFFERED=1",
}

func startPeer(python, script, name string) (*peer, error) {
	cmd := exec.Command(python, script, name)
	cmd.Env = append(os.Environ(), peerEnv...)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s %s %s: %w", python, script, name, err)
	}
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	p := &peer{name: name, cmd: cmd, in: in, out: sc}
	info, err := p.call(map[string]any{"op": "info"})
	if err != nil {
		_ = p.Close()
		return nil, err
	}
	p.Info = info
	return p, nil
}

func (p *peer) call(req map[string]any) (map[string]any, error) {
	b, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	if _, err := p.in.Write(append(b, '\n')); err != nil {
		return nil, fmt.Errorf("%s worker: writing %s: %w", p.name, req["op"], err)
	}
	if !p.out.Scan() {
		return nil, fmt.Errorf("%s worker: no answer to %s (it exited? see its stderr above): %v", p.name, req["op"], p.out.Err())
	}
	var ans map[string]any
	if err := json.Unmarshal(p.out.Bytes(), &ans); err != nil {
		return nil, fmt.Errorf("%s worker: bad answer %q: %w", p.name, p.out.Text(), err)
	}
	if ok, _ := ans["ok"].(bool); !ok {
		return nil, fmt.Errorf("%s worker: %s: %v", p.name, req["op"], ans["error"])
	}
	return ans, nil
}

func (p *peer) Setup(c CaseSpec, warmup int) (int, error) {
	ans, err := p.call(map[string]any{"op": "setup", "id": c.ID, "model": c.Model, "loss": c.Loss, "batch": c.Batch,
		"opt": c.Opt, "lr": c.LR, "warmup": warmup})
	if err != nil {
		return 0, err
	}
	n, _ := ans["params"].(float64)
	return int(n), nil
}

func (p *peer) Run(id string, steps int) (time.Duration, error) {
	ans, err := p.call(map[string]any{"op": "run", "id": id, "steps": steps})
	if err != nil {
		return 0, err
	}
	s, _ := ans["seconds"].(float64)
	return time.Duration(s * float64(time.Second)), nil
}

func (p *peer) Drop(id string) error {
	_, err := p.call(map[string]any{"op": "drop", "id": id})
	return err
}

// gemm asks the worker for its best float32 n x n matrix product times, by library.
func (p *peer) gemm(n, reps int) (map[string]float64, error) {
	ans, err := p.call(map[string]any{"op": "gemm", "n": n, "reps": reps})
	if err != nil {
		return nil, err
	}
	res := map[string]float64{}
	for k, v := range ans {
		if f, ok := v.(float64); ok {
			res[k] = f
		}
	}
	return res, nil
}

func (p *peer) Close() error {
	_, _ = p.call(map[string]any{"op": "quit"})
	_ = p.in.Close()
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		return <-done
	}
}

// ourGEMM times float32 n x n products on backend, best of reps: summed in the graph
// (ReduceAllSum(Dot(a, b)): one number comes back) and alone (the matrix read back to the
// host, which adds a copy of n*n floats to the product's time).
func ourGEMM(backend compute.Backend, n, reps int) (summed, alone time.Duration, err error) {
	a := tensors.FromShape(shapes.Make(dtypes.Float32, n, n))
	b := tensors.FromShape(shapes.Make(dtypes.Float32, n, n))
	rng := rand.New(rand.NewPCG(3, 4))
	for _, t := range []*tensors.Tensor{a, b} {
		tensors.MustMutableFlatData(t, func(flat []float32) {
			for i := range flat {
				flat[i] = float32(rng.NormFloat64())
			}
		})
	}
	time1 := func(graphFn func(a, b *Node) *Node) (time.Duration, error) {
		exec, err := NewExec(backend, graphFn)
		if err != nil {
			return 0, err
		}
		defer exec.Finalize()
		best := time.Duration(1<<63 - 1)
		for i := range reps + 1 {
			start := time.Now()
			out, err := exec.Exec(a, b)
			if err != nil {
				return 0, err
			}
			if err := out[0].ConstFlatData(func(any) {}); err != nil {
				return 0, err
			}
			if d := time.Since(start); i > 0 && d < best {
				best = d
			}
			_ = out[0].FinalizeAll()
		}
		return best, nil
	}
	if summed, err = time1(func(a, b *Node) *Node { return ReduceAllSum(Dot(a, b).Product()) }); err != nil {
		return 0, 0, err
	}
	alone, err = time1(func(a, b *Node) *Node { return Dot(a, b).Product() })
	return summed, alone, err
}
