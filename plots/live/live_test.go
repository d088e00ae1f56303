package live

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/janpfeifer/gonb/gonbui/protocol"

	"github.com/goptlab/goptlab/mlx/history"
	"github.com/goptlab/goptlab/plots"
)

// fakeDisplay records the notebook updates: the bundles, and their text/html (or, for
// figures, image/svg+xml) as a string.
type fakeDisplay struct {
	updates map[string][]string
	bundles map[string][]*protocol.DisplayData
	flushes int
}

func (d *fakeDisplay) flush() error {
	d.flushes++
	return nil
}

func (d *fakeDisplay) update(id string, b *protocol.DisplayData) error {
	if d.updates == nil {
		d.updates, d.bundles = map[string][]string{}, map[string][]*protocol.DisplayData{}
	}
	d.updates[id] = append(d.updates[id], bundleText(b))
	d.bundles[id] = append(d.bundles[id], b)
	return nil
}

// bundleText returns the HTML of b, or its SVG if it has no HTML.
func bundleText(b *protocol.DisplayData) string {
	if h, ok := b.Data[protocol.MIMETextHTML].(string); ok {
		return h
	}
	s, _ := b.Data[protocol.MIMEImageSVG].(string)
	return s
}

// fakeClock advances by step at each call.
type fakeClock struct {
	t    time.Time
	step time.Duration
}

func (c *fakeClock) now() time.Time { c.t = c.t.Add(c.step); return c.t }

func record(step int) history.Record {
	return history.Record{Step: step, Time: 0.1 * float64(step), Evals: int64(step), Loss: 2 / math.Sqrt(float64(step)),
		Metrics: map[string]float64{"lr": 1e-3, "accuracy": 0.5}}
}

func TestNotebookUpdates(t *testing.T) {
	d := &fakeDisplay{}
	v := New(100, Every(10), MinInterval(0), PlotOptions(plots.LogY()))
	v.disp = d
	h := history.New("adam", "adam", 1)
	for s := 1; s <= 95; s++ {
		h.Add(record(s))
		if err := v.Update(h); err != nil {
			t.Fatal(err)
		}
	}
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	if d.flushes != 1 {
		t.Errorf("Close flushed the display %d times, want once (so the last frames reach the notebook)", d.flushes)
	}
	progress, plotted := d.updates[v.progressID], d.updates[v.plotID]
	if len(d.updates) != 2 {
		t.Fatalf("updated %d output blocks, want 2 (progress and plot)", len(d.updates))
	}
	if len(progress) != 96 {
		t.Errorf("%d progress updates, want 95 + 1 final", len(progress))
	}
	// First update, every 10th (10..90), and the final one at step 95.
	if len(plotted) != 11 || v.Redraws() != 11 {
		t.Errorf("%d plot updates (Redraws %d), want 11", len(plotted), v.Redraws())
	}
	for i, p := range plotted {
		b := d.bundles[v.plotID][i]
		if !strings.Contains(p, "<svg") || !strings.Contains(p, ">adam<") || b.Data[protocol.MIMEImagePNG] == nil || b.Data[protocol.MIMETextHTML] != nil {
			t.Fatalf("plot update is not a figure bundle (SVG with the run's legend, PNG, no HTML): %.80s", p)
		}
	}
	for i, b := range d.bundles[v.progressID] {
		if b.Data[protocol.MIMETextPlain] == nil {
			t.Fatalf("progress update %d has no text/plain form", i)
		}
	}
	last := progress[len(progress)-1]
	for _, want := range []string{`<progress value="95" max="100"`, "step 95/100 (95%)", "10.0 steps/s", "done", "loss 0.2052", "accuracy 0.5", "lr 0.001"} {
		if !strings.Contains(last, want) {
			t.Errorf("final progress lacks %q: %s", want, last)
		}
	}
	if mid := progress[49]; !strings.Contains(mid, "ETA 0:05") {
		t.Errorf("progress at step 50 lacks ETA 0:05 (50 steps left at 10 steps/s): %s", mid)
	}
	if err := v.Update(h); err == nil {
		t.Error("Update after Close: no error")
	}
	if err := v.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestThrottle(t *testing.T) {
	d := &fakeDisplay{}
	clock := &fakeClock{t: time.Unix(0, 0), step: 50 * time.Millisecond}
	v := New(0, Every(1000), MinInterval(200*time.Millisecond))
	v.disp, v.now = d, clock.now
	h := history.New("sgd", "sgd", 0)
	for s := 1; s <= 40; s++ {
		h.Add(record(s))
		if err := v.Update(h); err != nil {
			t.Fatal(err)
		}
	}
	// 40 updates 50ms apart: the first, then one every 4th.
	if n := len(d.updates[v.progressID]); n != 10 {
		t.Errorf("%d progress refreshes, want 10", n)
	}
	if n := len(d.updates[v.plotID]); n != 1 {
		t.Errorf("%d plot draws, want 1 (only the first before Close)", n)
	}
	if p := d.updates[v.progressID][0]; strings.Contains(p, "<progress") || !strings.Contains(p, "step 1 ") {
		t.Errorf("unknown total should show the step without a bar: %s", p)
	}
}

func TestTerminal(t *testing.T) {
	var buf bytes.Buffer
	dir := t.TempDir()
	png := filepath.Join(dir, "live.png")
	v := New(20, Output(&buf), MinInterval(0), Every(5), Metrics("lr"), SaveTo(png))
	h := history.New("adam", "adam", 1)
	for s := 1; s <= 20; s++ {
		h.Add(record(s))
		if err := v.Update(h); err != nil {
			t.Fatal(err)
		}
	}
	h.Records[19].Metrics = nil
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if !strings.HasSuffix(out, "\n") || strings.Count(out, "\n") != 1 {
		t.Errorf("terminal output should be one line rewritten with \\r and ended by one newline: %q", out)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\r")[1:]
	if len(lines) != 21 {
		t.Fatalf("%d progress writes, want 21", len(lines))
	}
	if want := "[==========>         ] 10/20  50% | 10.0 steps/s | ETA 0:01 | loss 0.6325 lr 0.001"; lines[9] != want {
		t.Errorf("line at step 10:\n got %q\nwant %q", lines[9], want)
	}
	if strings.Contains(lines[20], "accuracy") {
		t.Errorf("Metrics(\"lr\") should hide other metrics: %q", lines[20])
	}
	if len(lines[20]) < len(strings.TrimRight(lines[19], " ")) {
		t.Errorf("a shorter line must be padded to erase the previous one")
	}
	if fi, err := os.Stat(png); err != nil || fi.Size() == 0 {
		t.Errorf("SaveTo did not write the plot: %v", err)
	}
	if v.Redraws() != 5 {
		t.Errorf("Redraws = %d, want 5 (steps 1, 5, 10, 15, 20)", v.Redraws())
	}
}

func TestErrors(t *testing.T) {
	var buf bytes.Buffer
	v := New(10, Output(&buf), PlotOptions(plots.LogY()), SaveTo(filepath.Join(t.TempDir(), "x.svg")))
	h := history.New("bad", "adam", 0)
	h.Add(history.Record{Step: 1, Loss: -1})
	if err := v.Update(h); err == nil || !strings.Contains(err.Error(), "log") {
		t.Errorf("negative loss on a log plot: error %v", err)
	}
	if err := v.Update(nil); err == nil {
		t.Error("nil history: no error")
	}
	if err := New(10, Output(&buf)).Update(history.New("empty", "adam", 0)); err != nil {
		t.Errorf("empty history: %v", err)
	}
}

func TestFormat(t *testing.T) {
	for sec, want := range map[float64]string{0: "0:00", 59.6: "1:00", 125: "2:05", 3725: "1:02:05"} {
		if got := formatDuration(sec); got != want {
			t.Errorf("formatDuration(%v) = %q, want %q", sec, got, want)
		}
	}
	for r, want := range map[float64]string{0: "– steps/s", 250: "250 steps/s", 3.14: "3.1 steps/s", 0.25: "4.00 s/step"} {
		if got := formatRate(r); got != want {
			t.Errorf("formatRate(%v) = %q, want %q", r, got, want)
		}
	}
}

// Values a training loop can produce at its extremes format without panicking: a step
// beyond the total or below zero, an ETA of 1e300 seconds, NaN and infinite rates.
func TestFormatExtremes(t *testing.T) {
	for _, s := range []status{
		{step: -5, total: 10, eta: -1}, {step: 50, total: 10, eta: 0},
		{step: math.MaxInt, total: 1, rate: math.Inf(1), eta: -1},
		{step: 1, total: math.MaxInt, rate: 1e-300, eta: 1e300},
	} {
		line := progressLine(s)
		if !strings.Contains(line, "/") {
			t.Errorf("progressLine(%+v) = %q", s, line)
		}
		progressHTML(s, false)
	}
	for sec, want := range map[float64]string{1e300: "> 1000 h", math.Inf(1): "> 1000 h", math.NaN(): "–", -5: "0:00"} {
		if got := formatDuration(sec); got != want {
			t.Errorf("formatDuration(%v) = %q, want %q", sec, got, want)
		}
	}
}
