package live

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/janpfeifer/gonb/gonbui/protocol"

	"github.com/goptlab/goptlab/mlx/history"
	"github.com/goptlab/goptlab/plots"
)

// syncDisplay records notebook updates from several goroutines and signals each one.
type syncDisplay struct {
	mu      sync.Mutex
	bundles map[string][]*protocol.DisplayData
	flushes int
	changed chan struct{}
}

func newSyncDisplay() *syncDisplay {
	return &syncDisplay{bundles: map[string][]*protocol.DisplayData{}, changed: make(chan struct{}, 1)}
}

func (d *syncDisplay) update(id string, b *protocol.DisplayData) error {
	d.mu.Lock()
	d.bundles[id] = append(d.bundles[id], b)
	d.mu.Unlock()
	select {
	case d.changed <- struct{}{}:
	default:
	}
	return nil
}

func (d *syncDisplay) flush() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.flushes++
	return nil
}

// last returns the latest bundle shown in block id (nil if none).
func (d *syncDisplay) last(id string) *protocol.DisplayData {
	d.mu.Lock()
	defer d.mu.Unlock()
	if bs := d.bundles[id]; len(bs) > 0 {
		return bs[len(bs)-1]
	}
	return nil
}

func (d *syncDisplay) count(id string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.bundles[id])
}

// waitForText waits until the text/plain of block id contains want, and returns it.
func (d *syncDisplay) waitForText(id, want string) string {
	for {
		if b := d.last(id); b != nil {
			if s, _ := b.Data[protocol.MIMETextPlain].(string); strings.Contains(s, want) {
				return s
			}
		}
		<-d.changed
	}
}

// manualClock is a clock the test sets, safe for the ticker goroutine to read.
type manualClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *manualClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *manualClock) set(sec float64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = time.Unix(1000, 0).Add(time.Duration(sec * float64(time.Second)))
}

// manualTicker hands the view a tick channel the test sends on, and reports stops.
type manualTicker struct {
	ticks   chan time.Time
	stopped chan struct{}
	starts  int
}

func (k *manualTicker) start() (<-chan time.Time, func()) {
	k.starts++
	k.ticks, k.stopped = make(chan time.Time), make(chan struct{})
	stopped := k.stopped
	return k.ticks, func() { close(stopped) }
}

// newTestRuns returns a notebook view with a fake display, clock (at 0 s) and ticker.
func newTestRuns(opts ...Option) (*Runs, *syncDisplay, *manualClock, *manualTicker) {
	d, clock, ticker := newSyncDisplay(), &manualClock{}, &manualTicker{}
	clock.set(0)
	m := NewRuns(opts...)
	m.disp, m.now, m.newTicker = d, clock.now, ticker.start
	return m, d, clock, ticker
}

func lossRecord(step int) history.Record {
	return history.Record{Step: step, Time: 0.1 * float64(step), Evals: int64(step), Loss: 1 / float64(step)}
}

// rowOf returns the line of the text table that starts with name.
func rowOf(table, name string) string {
	for _, l := range strings.Split(table, "\n") {
		if strings.HasPrefix(l, name+" ") {
			return l
		}
	}
	return ""
}

func TestRunsCompilingThenTraining(t *testing.T) {
	m, d, clock, ticker := newTestRuns(Every(1000), MinInterval(0), PlotOptions(plots.LogY()))
	a := m.Start("adam", 600)
	if got := rowOf(d.waitForText(m.tableID, "adam"), "adam"); !strings.Contains(got, "0/600") || !strings.HasSuffix(got, "compiling… 0 s") {
		t.Errorf("row right after Start = %q, want 0/600 and compiling… 0 s", got)
	}
	// Each tick of the ticker refreshes the elapsed compile time.
	clock.set(3.2)
	ticker.ticks <- time.Time{}
	d.waitForText(m.tableID, "compiling… 3 s")
	clock.set(5)
	ticker.ticks <- time.Time{}
	table := d.waitForText(m.tableID, "compiling… 5 s")
	if !strings.Contains(rowOf(table, "adam"), "0:05") {
		t.Errorf("elapsed time not shown while compiling: %q", table)
	}

	// The first step arrives at 5 s, the 60th at 10 s: 10 steps/s since the first update
	// (compilation excluded), 540 steps left.
	h := history.New("adam", "adam", 1)
	h.Add(lossRecord(10))
	if err := a.Update(h); err != nil {
		t.Fatal(err)
	}
	clock.set(10)
	h.Add(lossRecord(60))
	if err := a.Update(h); err != nil {
		t.Fatal(err)
	}
	row := rowOf(d.waitForText(m.tableID, "training"), "adam")
	for _, want := range []string{"60/600", "0.01667", "0:10", "0:54", "training · 10.0 steps/s"} {
		if !strings.Contains(row, want) {
			t.Errorf("training row %q lacks %q", row, want)
		}
	}
	html, _ := d.last(m.tableID).Data[protocol.MIMETextHTML].(string)
	if !strings.Contains(html, `<progress value="60" max="600"`) || !strings.Contains(html, "<td") {
		t.Errorf("HTML table lacks the run's progress bar: %s", html)
	}
	// No run compiles any more: the next tick stops the ticker goroutine.
	ticker.ticks <- time.Time{}
	<-ticker.stopped
	if err := a.Finish(nil); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if got := rowOf(d.last(m.tableID).Data[protocol.MIMETextPlain].(string), "adam"); !strings.HasSuffix(got, "done") {
		t.Errorf("row after Finish(nil) = %q, want done", got)
	}
	if d.flushes != 1 {
		t.Errorf("Close flushed %d times, want 1", d.flushes)
	}
}

// Runs trained one after another share one table and one plot; each starts compiling when
// Start is called, the ticker restarting for the second.
func TestRunsSequentialSweep(t *testing.T) {
	m, d, clock, ticker := newTestRuns(Every(1000), MinInterval(0))
	names := []string{"sgd", "adam", "lion"}
	for i, name := range names {
		clock.set(float64(100 * i))
		r := m.Start(name, 20)
		clock.set(float64(100*i) + 2)
		ticker.ticks <- time.Time{}
		d.waitForText(m.tableID, name+" ") // the row exists
		if got := rowOf(d.waitForText(m.tableID, "compiling… 2 s"), name); !strings.HasSuffix(got, "compiling… 2 s") {
			t.Errorf("%s: row %q, want compiling… 2 s", name, got)
		}
		h := history.New(name, name, 1)
		for s := 1; s <= 20; s++ {
			clock.set(float64(100*i) + 3 + 0.5*float64(s))
			h.Add(lossRecord(s))
			if err := r.Update(h); err != nil {
				t.Fatal(err)
			}
		}
		if err := r.Finish(nil); err != nil {
			t.Fatal(err)
		}
		ticker.ticks <- time.Time{} // nothing compiles: the ticker stops
		<-ticker.stopped
	}
	if ticker.starts != 3 {
		t.Errorf("ticker started %d times, want once per run", ticker.starts)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	table := d.last(m.tableID).Data[protocol.MIMETextPlain].(string)
	if n := len(strings.Split(table, "\n")); n != 4 {
		t.Errorf("table has %d lines, want a header and 3 rows:\n%s", n, table)
	}
	for _, name := range names {
		if got := rowOf(table, name); !strings.Contains(got, "20/20") || !strings.HasSuffix(got, "done") {
			t.Errorf("final row of %s = %q", name, got)
		}
	}
	plot := d.last(m.plotID)
	svg, _ := plot.Data[protocol.MIMEImageSVG].(string)
	for _, name := range names {
		if !strings.Contains(svg, ">"+name+"<") {
			t.Errorf("the plot lacks a line for %s", name)
		}
	}
	if plot.Data[protocol.MIMEImagePNG] == nil || plot.Data[protocol.MIMETextHTML] != nil {
		t.Errorf("the plot is not a figure bundle (SVG and PNG, no HTML): %v", plot.Data)
	}
	// Each run is drawn at its first update and at its end: 6 redraws, in one block.
	if m.Redraws() != 6 || d.count(m.plotID) != 6 || len(d.bundles) != 2 {
		t.Errorf("%d redraws, %d plot updates, %d blocks; want 6, 6 and 2 (table and plot)", m.Redraws(), d.count(m.plotID), len(d.bundles))
	}
}

func TestRunsFailedAndStopped(t *testing.T) {
	m, d, clock, ticker := newTestRuns(MinInterval(0))
	bad := m.Start("bad", 100)
	slow := m.Start("slow", 100)
	if ticker.starts != 1 {
		t.Errorf("ticker started %d times for two compiling runs, want 1", ticker.starts)
	}
	h := history.New("bad", "sgd", 1)
	h.Add(lossRecord(10))
	if err := bad.Update(h); err != nil {
		t.Fatal(err)
	}
	clock.set(4)
	if err := bad.Finish(fmt.Errorf("train.Run(%q): step 11: loss is NaN", "bad")); err != nil {
		t.Fatal(err)
	}
	if err := bad.Update(h); err == nil {
		t.Error("Update after Finish: no error")
	}
	if err := bad.Finish(nil); err != nil {
		t.Errorf("second Finish: %v", err)
	}
	// slow never gets a step: Close stops the ticker (waiting for it) and shows it stopped.
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	<-ticker.stopped
	table := d.last(m.tableID).Data[protocol.MIMETextPlain].(string)
	if got := rowOf(table, "bad"); !strings.HasSuffix(got, `failed: train.Run("bad"): step 11: loss is NaN`) || !strings.Contains(got, "10/100") {
		t.Errorf("failed row = %q", got)
	}
	if got := rowOf(table, "slow"); !strings.HasSuffix(got, "stopped") || !strings.Contains(got, "0:04") {
		t.Errorf("row of a run still compiling at Close = %q, want stopped after 0:04", got)
	}
	if err := slow.Update(h); err == nil {
		t.Error("Update after Close: no error")
	}
	late := m.Start("late", 10)
	if err := late.Update(h); err == nil {
		t.Error("Update of a run started after Close: no error")
	}
	if err := m.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if ticker.starts != 1 {
		t.Errorf("Start after Close started the ticker")
	}
}

// Runs trained in parallel update the view from their own goroutines, each appending to
// its history while the others draw the plot (run with -race).
func TestRunsParallel(t *testing.T) {
	m, d, _, _ := newTestRuns(Every(7), MinInterval(0))
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for i := range 4 {
		r := m.Start(fmt.Sprintf("run%d", i), 50)
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := history.New(fmt.Sprintf("run%d", i), "adam", int64(i))
			for s := 1; s <= 50; s++ {
				h.Add(lossRecord(s))
				if err := r.Update(h); err != nil {
					errs <- err
					return
				}
			}
			errs <- r.Finish(nil)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	table := d.last(m.tableID).Data[protocol.MIMETextPlain].(string)
	for i := range 4 {
		if got := rowOf(table, fmt.Sprintf("run%d", i)); !strings.HasSuffix(got, "done") {
			t.Errorf("row %q, want done", got)
		}
	}
}

func TestRunsTerminal(t *testing.T) {
	var buf bytes.Buffer
	m := NewRuns(Output(&buf), MinInterval(time.Hour))
	clock := &manualClock{}
	clock.set(0)
	m.now = clock.now
	if m.disp != nil {
		t.Skip("running inside GoNB")
	}
	r := m.Start("adam", 3)
	h := history.New("adam", "adam", 1)
	for s := 1; s <= 3; s++ {
		clock.set(float64(s))
		h.Add(lossRecord(s))
		if err := r.Update(h); err != nil {
			t.Fatal(err)
		}
	}
	other := m.Start("sgd", 3)
	if err := other.Finish(errors.New("out of memory")); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	want := strings.Join([]string{
		"adam: step 0/3 | loss – | elapsed 0:00 | ETA – | compiling… 0 s",
		"adam: step 1/3 | loss 1 | elapsed 0:01 | ETA – | training · – steps/s", // first update
		"adam: step 3/3 | loss 0.3333 | elapsed 0:03 | ETA 0:00 | done",         // end
		"sgd: step 0/3 | loss – | elapsed 0:00 | ETA – | compiling… 0 s",
		"sgd: step 0/3 | loss – | elapsed 0:00 | ETA – | failed: out of memory", // started and failed at 3 s
	}, "\n") + "\n"
	if got := buf.String(); got != want {
		t.Errorf("terminal output:\n%s\nwant:\n%s", got, want)
	}
}

func TestTableText(t *testing.T) {
	got := tableText([]row{
		{name: "adam lr=1e-3", step: "60/600", loss: "0.01667", elapsed: "0:10", eta: "0:54", state: "training"},
		{name: "sgd", step: "0/600", loss: "–", elapsed: "0:02", eta: "–", state: "compiling… 2 s"},
	})
	want := "" +
		"run             step     loss  elapsed   ETA  state\n" +
		"adam lr=1e-3  60/600  0.01667     0:10  0:54  training\n" +
		"sgd            0/600        –     0:02     –  compiling… 2 s"
	if got != want {
		t.Errorf("tableText:\n%s\nwant:\n%s", got, want)
	}
	if h := tableHTML([]row{{name: "<b>x</b>", step: "1"}}); strings.Contains(h, "<b>x") {
		t.Errorf("run names are not escaped in the HTML table: %s", h)
	}
}

// A single-run View shows the compile time from New until its first update.
func TestViewCompiling(t *testing.T) {
	d, clock, ticker := newSyncDisplay(), &manualClock{}, &manualTicker{}
	clock.set(0)
	v := newView(100, d, clock.now, ticker.start, []Option{MinInterval(0)})
	if got := d.waitForText(v.progressID, "compiling"); got != "step 0/100 · compiling… 0 s" {
		t.Errorf("progress right after New = %q", got)
	}
	clock.set(2.5)
	ticker.ticks <- time.Time{}
	d.waitForText(v.progressID, "compiling… 2 s")
	h := history.New("adam", "adam", 1)
	h.Add(lossRecord(1))
	if err := v.Update(h); err != nil {
		t.Fatal(err)
	}
	if got := d.waitForText(v.progressID, "1/100"); strings.Contains(got, "compiling") {
		t.Errorf("progress after the first step still says compiling: %q", got)
	}
	<-ticker.stopped // the first update stops the ticker
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	if got := d.last(v.progressID).Data[protocol.MIMETextPlain].(string); strings.Contains(got, "compiling") {
		t.Errorf("final progress %q", got)
	}
}

func TestViewClosedWhileCompiling(t *testing.T) {
	d, clock, ticker := newSyncDisplay(), &manualClock{}, &manualTicker{}
	clock.set(0)
	v := newView(0, d, clock.now, ticker.start, nil)
	clock.set(4)
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	<-ticker.stopped
	if got, want := d.last(v.progressID).Data[protocol.MIMETextPlain], "stopped after 0:04, before the first step"; got != want {
		t.Errorf("progress after Close = %q, want %q", got, want)
	}
	if d.flushes != 1 {
		t.Errorf("%d flushes, want 1", d.flushes)
	}
}
