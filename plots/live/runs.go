package live

import (
	"fmt"
	"html"
	"strings"
	"sync"
	"time"

	"github.com/janpfeifer/gonb/gonbui"

	"github.com/goptlab/goptlab/mlx/history"
)

// Runs is a live view of several training runs: one table with a row per run (name,
// step/total, loss, elapsed time, ETA, state) and one loss plot with a line per run, both
// updated in place in a GoNB notebook. A run shows "compiling… 3 s" from [Runs.Start]
// until its first logged step arrives (train.Run calls OnStep only after the step graph is
// compiled and the first steps are done), refreshed every second.
//
//	view := live.NewRuns(live.PlotOptions(plots.LogY()))
//	defer view.Close()
//	for _, name := range names {
//		run := view.Start(name, steps)               // just before train.Run
//		cfg := train.Config{Steps: steps, OnStep: run.Update, ...}
//		_, err := train.Run(...)
//		run.Finish(err)
//	}
//
// Outside a notebook it writes one line per refresh of a run (at its start, its first
// update, at most one per [MinInterval] and at its end) to the terminal. Its methods,
// and those of its [Run]s, may be called from several goroutines (runs trained in parallel).
type Runs struct {
	settings

	mu          sync.Mutex
	disp        display // nil outside a notebook
	now         func() time.Time
	newTicker   func() (ticks <-chan time.Time, stop func())
	tableID     string
	plotID      string
	runs        []*Run
	updates     int
	lastRefresh time.Time
	redraws     int
	closed      bool

	// The ticker goroutine refreshes the table every second while a run is compiling.
	ticking  bool
	tickQuit chan struct{}
	tickDone chan struct{}
	tickErr  error // the first error of a refresh by the ticker, returned by the next call
}

// Run is one run of a [Runs] view, returned by [Runs.Start].
type Run struct {
	view      *Runs
	name      string
	total     int
	start     time.Time
	end       time.Time // when it finished or failed
	firstAt   time.Time // when its first update arrived
	firstStep int
	lastAt    time.Time
	hist      *history.History // a snapshot of the latest history: the records up to the update
	plotted   int              // the step of the run last drawn in the plot
	state     runState
	err       error
}

type runState int

const (
	compiling runState = iota // started, no step yet
	training
	done
	failed
	stopped // the view was closed before the run finished
)

// NewRuns returns a view of several runs. Options: [Every] (plot redraws, counted over the
// updates of all runs; a run's first update and its end are always drawn), [MinInterval]
// (table refreshes), [PlotOptions], [Compare], [Output], [SaveTo].
func NewRuns(opts ...Option) *Runs {
	m := &Runs{settings: newSettings(opts), now: time.Now, newTicker: secondTicker}
	if gonbui.IsNotebook {
		m.disp = gonbDisplay{}
	}
	id := gonbui.UniqueId()
	m.tableID, m.plotID = "live_runs_table_"+id, "live_runs_plot_"+id
	return m
}

func secondTicker() (<-chan time.Time, func()) {
	t := time.NewTicker(time.Second)
	return t.C, t.Stop
}

// Start adds a run of total steps (0 if unknown) called name, shown as compiling from now
// until its first update. Call it just before train.Run, and give [Run.Update] as the
// config's OnStep. Start on a closed view returns a stopped run, whose Update returns an
// error.
func (m *Runs) Start(name string, total int) *Run {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := &Run{view: m, name: name, total: total, start: m.now(), state: compiling}
	if m.closed {
		r.state = stopped
		return r
	}
	m.runs = append(m.runs, r)
	if m.disp == nil {
		m.tickErr = firstErr(m.tickErr, m.writeLine(r))
		return r
	}
	m.tickErr = firstErr(m.tickErr, m.showTable())
	if !m.ticking {
		m.ticking = true
		m.tickQuit, m.tickDone = make(chan struct{}), make(chan struct{})
		ticks, stop := m.newTicker()
		go m.tick(ticks, stop, m.tickQuit, m.tickDone)
	}
	return r
}

// tick refreshes the table at each tick while a run is compiling, and returns when none is
// or when quit is closed.
func (m *Runs) tick(ticks <-chan time.Time, stop func(), quit, done chan struct{}) {
	defer close(done)
	defer stop()
	for {
		select {
		case <-quit:
			return
		case <-ticks:
			m.mu.Lock()
			if !m.compiling() {
				m.ticking = false
				m.mu.Unlock()
				return
			}
			m.tickErr = firstErr(m.tickErr, m.showTable())
			m.mu.Unlock()
		}
	}
}

func (m *Runs) compiling() bool {
	for _, r := range m.runs {
		if r.state == compiling {
			return true
		}
	}
	return false
}

func firstErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// takeErr returns and clears the error of an earlier refresh by the ticker.
func (m *Runs) takeErr() error {
	err := m.tickErr
	m.tickErr = nil
	return err
}

// Update shows the latest state of h, the run's history: it has the signature of
// train.Config.OnStep. A history without records is ignored. It returns errors from
// drawing the plot or from the notebook connection, with context.
func (r *Run) Update(h *history.History) error {
	m := r.view
	m.mu.Lock()
	defer m.mu.Unlock()
	if r.state != compiling && r.state != training {
		return fmt.Errorf("live: Update of run %q after it ended (%s)", r.name, r.stateText(m.now()))
	}
	if h == nil {
		return fmt.Errorf("live: Update of run %q with a nil history", r.name)
	}
	if len(h.Records) == 0 {
		return nil
	}
	now := m.now()
	// A snapshot: the training goroutine appends to h.Records while other runs' updates
	// draw the plot; the records up to now are never changed.
	snap := *h
	snap.Records = h.Records[:len(h.Records):len(h.Records)]
	r.hist = &snap
	last := snap.Records[len(snap.Records)-1]
	first := r.state == compiling
	if first {
		r.state, r.firstAt, r.firstStep = training, now, last.Step
	}
	r.lastAt = now
	if r.total > 0 && last.Step >= r.total {
		r.state, r.end = done, now
	}
	m.updates++
	err := m.takeErr()
	if first || r.state == done || now.Sub(m.lastRefresh) >= m.minInterval {
		m.lastRefresh = now
		err = firstErr(err, m.refresh(r))
	}
	if first || r.state == done || m.updates%m.every == 0 {
		err = firstErr(err, m.redraw())
	}
	return err
}

// Finish ends the run: done if err is nil, failed with err's message otherwise (pass what
// train.Run returned). A run that reached its total steps is done already. Finish after
// the run ended changes nothing.
func (r *Run) Finish(err error) error {
	m := r.view
	m.mu.Lock()
	defer m.mu.Unlock()
	if r.state != compiling && r.state != training {
		return nil
	}
	r.end = m.now()
	if err != nil {
		r.state, r.err = failed, err
	} else {
		r.state = done
	}
	out := firstErr(m.takeErr(), m.refresh(r))
	if r.hist != nil && r.plottedBehind() {
		out = firstErr(out, m.redraw())
	}
	return out
}

// Close ends the view: runs still compiling or training are shown as stopped, the table and
// the plot show their final state, and, in a notebook, it returns once GoNB has every
// update. It is safe to call more than once.
func (m *Runs) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	if m.ticking {
		m.ticking = false
		close(m.tickQuit)
	}
	done := m.tickDone
	m.mu.Unlock()
	if done != nil {
		<-done // the ticker may be waiting for the lock: wait without it
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	behind := false
	for _, r := range m.runs {
		if r.state == compiling || r.state == training {
			r.state, r.end = stopped, now
			if m.disp == nil {
				m.tickErr = firstErr(m.tickErr, m.writeLine(r))
			}
		}
		behind = behind || (r.hist != nil && r.plottedBehind())
	}
	err := m.takeErr()
	if m.disp != nil && len(m.runs) > 0 {
		err = firstErr(err, m.showTable())
	}
	if behind {
		err = firstErr(err, m.redraw())
	}
	if m.disp != nil {
		err = firstErr(err, m.disp.flush())
	}
	return err
}

// Redraws returns how many times the plot has been drawn.
func (m *Runs) Redraws() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.redraws
}

func (r *Run) plottedBehind() bool {
	last, _ := r.hist.Last()
	return last.Step != r.plotted
}

// refresh shows the table in a notebook, or r's line in the terminal.
func (m *Runs) refresh(r *Run) error {
	if m.disp != nil {
		return m.showTable()
	}
	return m.writeLine(r)
}

// redraw draws the runs that have records in one plot.
func (m *Runs) redraw() error {
	var hs []*history.History
	for _, r := range m.runs {
		if r.hist != nil {
			hs = append(hs, r.hist)
			last, _ := r.hist.Last()
			r.plotted = last.Step
		}
	}
	if len(hs) == 0 || (m.disp == nil && m.savePath == "") {
		return nil
	}
	if err := m.drawPlot(m.disp, m.plotID, hs); err != nil {
		return err
	}
	m.redraws++
	return nil
}

// row is what the table shows of a run.
type row struct {
	name, step, loss, elapsed, eta, state string
	value, max                            int // for the progress bar; max 0: none
}

func (r *Run) row(now time.Time) row {
	w := row{name: r.name, step: "–", loss: "–", eta: "–", state: r.stateText(now)}
	end := now
	if !r.end.IsZero() {
		end = r.end
	}
	w.elapsed = formatDuration(end.Sub(r.start).Seconds())
	if r.hist != nil {
		last, _ := r.hist.Last()
		w.loss = formatValue(last.Loss)
		w.step = fmt.Sprint(last.Step)
		if r.total > 0 {
			w.step += fmt.Sprintf("/%d", r.total)
			w.value, w.max = min(max(last.Step, 0), r.total), r.total
		}
		if rate := r.rate(); r.state == training && r.total > 0 && rate > 0 {
			w.eta = formatDuration(float64(r.total-last.Step) / rate)
		}
	} else if r.total > 0 {
		w.step = fmt.Sprintf("0/%d", r.total)
		w.max = r.total
	}
	if r.state == done {
		w.eta = "0:00"
	}
	return w
}

// rate returns the steps per second since the first update (which comes after the
// compilation), measured by the wall clock: it counts evaluation and logging too. 0 if
// unknown.
func (r *Run) rate() float64 {
	last, _ := r.hist.Last()
	dt := r.lastAt.Sub(r.firstAt).Seconds()
	if dt <= 0 || last.Step <= r.firstStep {
		return 0
	}
	return float64(last.Step-r.firstStep) / dt
}

func (r *Run) stateText(now time.Time) string {
	switch r.state {
	case compiling:
		return fmt.Sprintf("compiling… %d s", int(now.Sub(r.start).Seconds()))
	case training:
		return "training · " + formatRate(r.rate())
	case done:
		return "done"
	case failed:
		msg := r.err.Error()
		if n := 120; len([]rune(msg)) > n {
			msg = string([]rune(msg)[:n]) + "…"
		}
		return "failed: " + msg
	default:
		return "stopped"
	}
}

var tableHeader = row{name: "run", step: "step", loss: "loss", elapsed: "elapsed", eta: "ETA", state: "state"}

// showTable shows the table of all runs in the notebook, as HTML and as text.
func (m *Runs) showTable() error {
	now := m.now()
	rows := make([]row, len(m.runs))
	for i, r := range m.runs {
		rows[i] = r.row(now)
	}
	return m.disp.update(m.tableID, htmlBundle(tableHTML(rows), tableText(rows)))
}

// tableHTML formats the rows as an HTML table (tags and styles that JupyterLab's sanitizer
// keeps, so the table shows in an untrusted notebook too).
func tableHTML(rows []row) string {
	var b strings.Builder
	b.WriteString(`<table style="font-family:monospace;font-size:13px;border-collapse:collapse">`)
	cell := func(tag, align, s string) {
		fmt.Fprintf(&b, `<%s style="text-align:%s;padding:1px 8px">%s</%s>`, tag, align, s, tag)
	}
	b.WriteString("<thead><tr>")
	h := tableHeader
	for i, s := range []string{h.name, h.step, h.loss, h.elapsed, h.eta, h.state} {
		cell("th", []string{"left", "right", "right", "right", "right", "left"}[i], s)
	}
	b.WriteString("</tr></thead><tbody>")
	for _, w := range rows {
		b.WriteString("<tr>")
		cell("td", "left", html.EscapeString(w.name))
		step := html.EscapeString(w.step)
		if w.max > 0 {
			step = fmt.Sprintf(`<progress value="%d" max="%d" style="width:90px;vertical-align:middle"></progress> %s`, w.value, w.max, step)
		}
		cell("td", "right", step)
		cell("td", "right", html.EscapeString(w.loss))
		cell("td", "right", html.EscapeString(w.elapsed))
		cell("td", "right", html.EscapeString(w.eta))
		cell("td", "left", html.EscapeString(w.state))
		b.WriteString("</tr>")
	}
	b.WriteString("</tbody></table>")
	return b.String()
}

// tableText formats the rows as a plain-text table with aligned columns.
func tableText(rows []row) string {
	all := append([]row{tableHeader}, rows...)
	cols := func(w row) []string { return []string{w.name, w.step, w.loss, w.elapsed, w.eta, w.state} }
	width := make([]int, 6)
	for _, w := range all {
		for i, s := range cols(w) {
			width[i] = max(width[i], len([]rune(s)))
		}
	}
	var b strings.Builder
	for _, w := range all {
		for i, s := range cols(w) {
			pad := strings.Repeat(" ", width[i]-len([]rune(s)))
			switch {
			case i == 5:
				b.WriteString(s)
			case i == 0:
				b.WriteString(s + pad + "  ")
			default:
				b.WriteString(pad + s + "  ")
			}
		}
		b.WriteString("\n")
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// writeLine writes r's row as one terminal line.
func (m *Runs) writeLine(r *Run) error {
	w := r.row(m.now())
	line := fmt.Sprintf("%s: step %s | loss %s | elapsed %s | ETA %s | %s\n", w.name, w.step, w.loss, w.elapsed, w.eta, w.state)
	if _, err := fmt.Fprint(m.out, line); err != nil {
		return fmt.Errorf("live: writing progress: %w", err)
	}
	return nil
}
