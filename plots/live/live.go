// Package live shows the progress of a training run while it trains: in a GoNB notebook,
// a progress bar (step, steps/s, ETA, latest metrics) and a loss plot, both updated in
// place, so the cell output does not grow; elsewhere, one terminal line rewritten with a
// carriage return. Until the first step arrives (train.Run compiles the step first), the
// notebook view shows "compiling… N s", refreshed every second.
//
// A training loop calls [View.Update] after each logged step (it has the signature of the
// callback func(*history.History) error), and [View.Close] at the end:
//
//	view := live.New(steps, live.Every(50), live.PlotOptions(plots.LogY()))
//	defer view.Close()
//	... train, calling view.Update(h) after each logged step ...
//
// [Runs] follows several runs (a sweep, seeds, optimizers side by side) in one table, a row
// per run with its state ("compiling… 3 s" until its first step arrives, then training,
// done or failed), and one plot with a line per run.
//
// Plots are sent as the bundle of [plots.Figure.DisplayData] (SVG, PNG and text), tables
// as HTML and text, so that the last frame shows in a notebook shared untrusted too.
package live

import (
	"fmt"
	"html"
	"io"
	"math"
	"os"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/janpfeifer/gonb/gonbui"
	"github.com/janpfeifer/gonb/gonbui/protocol"
	"gonum.org/v1/plot/vg"

	"github.com/goptlab/goptlab/mlx/history"
	"github.com/goptlab/goptlab/plots"
)

// View is a live progress display of one training run. It is not safe for concurrent use:
// call it from the training goroutine. To follow several runs in one table and one plot,
// use [Runs].
type View struct {
	settings
	total int

	disp       display // nil outside a notebook
	now        func() time.Time
	progressID string
	plotID     string

	// In a notebook, from New until the first update, a ticker goroutine shows
	// "compiling… N s" every second; mu orders its refreshes with Update and Close.
	mu        sync.Mutex
	start     time.Time
	compiling bool
	tickQuit  chan struct{}
	tickDone  chan struct{}
	tickErr   error

	updates      int
	lastRefresh  time.Time
	lastLineLen  int
	last         *history.History
	lastPlotStep int
	redraws      int
	closed       bool
}

// settings are what the options set, shared by [View] and [Runs].
type settings struct {
	every       int
	minInterval time.Duration
	metrics     []string
	plotOpts    []plots.Option
	compare     []*history.History
	out         io.Writer
	savePath    string
}

func newSettings(opts []Option) settings {
	s := settings{every: 50, minInterval: 200 * time.Millisecond, out: os.Stderr}
	for _, o := range opts {
		if o != nil {
			o(&s)
		}
	}
	s.every = max(s.every, 1)
	return s
}

// display updates a block of notebook output in place.
type display interface {
	// update shows the MIME bundle d in the output block id (created at its first update).
	update(id string, d *protocol.DisplayData) error
	// flush returns once the notebook has every update sent so far.
	flush() error
}

type gonbDisplay struct{}

func (gonbDisplay) update(id string, d *protocol.DisplayData) error {
	d.DisplayID = id
	gonbui.SendData(d)
	if err := gonbui.Error(); err != nil {
		return fmt.Errorf("live: updating the notebook: %w", err)
	}
	return nil
}

// flush waits for GoNB to have received every update: without it, the last frames can be
// lost when the cell's program exits right after Close.
func (gonbDisplay) flush() error {
	gonbui.Sync()
	if err := gonbui.Error(); err != nil {
		return fmt.Errorf("live: updating the notebook: %w", err)
	}
	return nil
}

// Option configures a [View] or [Runs].
type Option func(*settings)

// Every redraws the loss plot every n updates (default 50; the first and the last update
// are always drawn). The progress bar is refreshed at every update, at most once per
// [MinInterval].
func Every(n int) Option { return func(v *settings) { v.every = n } }

// MinInterval limits progress refreshes to one per d (default 200ms), so that fast loops
// do not flood the notebook or terminal. Zero refreshes at every update.
func MinInterval(d time.Duration) Option { return func(v *settings) { v.minInterval = d } }

// Metrics chooses the metrics shown after the loss in the progress line (default: all the
// latest record has, sorted by name).
func Metrics(names ...string) Option { return func(v *settings) { v.metrics = names } }

// PlotOptions are passed to [plots.Curves] for the live plot, e.g. plots.LogY().
func PlotOptions(opts ...plots.Option) Option {
	return func(v *settings) { v.plotOpts = append(v.plotOpts, opts...) }
}

// Compare draws finished runs in the live plot next to the one training, e.g. a baseline.
func Compare(hs ...*history.History) Option {
	return func(v *settings) { v.compare = append(v.compare, hs...) }
}

// Output sets where the terminal progress line goes outside a notebook (default os.Stderr).
func Output(w io.Writer) Option { return func(v *settings) { v.out = w } }

// SaveTo also saves the plot to path (.svg, .png or .pdf) at each redraw: outside a
// notebook, the way to watch the curve.
func SaveTo(path string) Option { return func(v *settings) { v.savePath = path } }

// New returns a view of a run of total steps (0 if unknown: no percentage or ETA then).
// In a GoNB notebook (gonbui.IsNotebook) it updates two output blocks in place, and shows
// "compiling… N s" from now until the first update (train.Run's first OnStep call comes
// after compilation): call it just before the run. Elsewhere it writes a progress line to
// the terminal.
func New(total int, opts ...Option) *View {
	var disp display
	if gonbui.IsNotebook {
		disp = gonbDisplay{}
	}
	return newView(total, disp, time.Now, secondTicker, opts)
}

// newView returns a view showing on disp (nil: the terminal), starting the compile ticker
// in a notebook.
func newView(total int, disp display, now func() time.Time, newTicker func() (<-chan time.Time, func()), opts []Option) *View {
	v := &View{settings: newSettings(opts), total: total, disp: disp, now: now}
	id := gonbui.UniqueId()
	v.progressID, v.plotID = "live_progress_"+id, "live_plot_"+id
	v.start = v.now()
	if v.disp != nil {
		v.compiling = true
		v.tickErr = v.showCompiling()
		v.tickQuit, v.tickDone = make(chan struct{}), make(chan struct{})
		ticks, stop := newTicker()
		go v.tick(ticks, stop)
	}
	return v
}

// tick shows the compile time at each tick until the first update or Close.
func (v *View) tick(ticks <-chan time.Time, stop func()) {
	defer close(v.tickDone)
	defer stop()
	for {
		select {
		case <-v.tickQuit:
			return
		case <-ticks:
			v.mu.Lock()
			if !v.compiling {
				v.mu.Unlock()
				return
			}
			v.tickErr = firstErr(v.tickErr, v.showCompiling())
			v.mu.Unlock()
		}
	}
}

// stopCompiling ends the compile display (v.mu held); the ticker goroutine returns at its
// next wake-up.
func (v *View) stopCompiling() {
	if v.compiling {
		v.compiling = false
		close(v.tickQuit)
	}
}

func (v *View) showCompiling() error {
	text := fmt.Sprintf("compiling… %d s", int(v.now().Sub(v.start).Seconds()))
	if v.total > 0 {
		text = fmt.Sprintf("step 0/%d · %s", v.total, text)
	}
	h := `<div style="font-family:monospace;font-size:13px;line-height:1.6">` + html.EscapeString(text) + "</div>"
	return v.disp.update(v.progressID, htmlBundle(h, text))
}

// Update shows the latest state of h. Call it after each logged step; it returns errors
// from drawing the plot (e.g. a non-positive loss with plots.LogY()) or from the notebook
// connection, with context. A history without records is ignored.
func (v *View) Update(h *history.History) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.closed {
		return fmt.Errorf("live: Update after Close")
	}
	if h == nil {
		return fmt.Errorf("live: Update with a nil history")
	}
	if len(h.Records) == 0 {
		return nil
	}
	v.stopCompiling()
	if err := v.tickErr; err != nil {
		v.tickErr = nil
		return err
	}
	v.updates++
	v.last = h
	now := v.now()
	if v.updates == 1 || now.Sub(v.lastRefresh) >= v.minInterval {
		v.lastRefresh = now
		if err := v.showProgress(h, false); err != nil {
			return err
		}
	}
	if v.updates == 1 || v.updates%v.every == 0 {
		if err := v.redraw(h); err != nil {
			return err
		}
	}
	return nil
}

// Close shows the final state: the progress at the last update and, if the plot is behind,
// a last redraw; outside a notebook it ends the progress line with a newline. It is safe to
// call more than once.
func (v *View) Close() error {
	v.mu.Lock()
	if v.closed {
		v.mu.Unlock()
		return nil
	}
	v.closed = true
	stillCompiling := v.compiling
	v.stopCompiling()
	v.mu.Unlock()
	if v.tickDone != nil {
		<-v.tickDone // the ticker may be waiting for the lock: wait without it
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if err := v.tickErr; err != nil {
		return err
	}
	if v.last == nil {
		if stillCompiling { // closed before any step: say so rather than "compiling"
			text := fmt.Sprintf("stopped after %s, before the first step", formatDuration(v.now().Sub(v.start).Seconds()))
			if err := v.disp.update(v.progressID, htmlBundle(`<div style="font-family:monospace;font-size:13px">`+html.EscapeString(text)+"</div>", text)); err != nil {
				return err
			}
			return v.disp.flush()
		}
		return nil
	}
	if err := v.showProgress(v.last, true); err != nil {
		return err
	}
	if last, _ := v.last.Last(); last.Step != v.lastPlotStep {
		if err := v.redraw(v.last); err != nil {
			return err
		}
	}
	if v.disp != nil {
		return v.disp.flush()
	}
	return nil
}

// Redraws returns how many times the plot has been drawn.
func (v *View) Redraws() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.redraws
}

func (v *View) redraw(h *history.History) error {
	last, _ := h.Last()
	v.lastPlotStep = last.Step
	if v.disp == nil && v.savePath == "" {
		return nil // no plot outside a notebook unless asked to save it
	}
	if err := v.settings.drawPlot(v.disp, v.plotID, []*history.History{h}); err != nil {
		return err
	}
	v.redraws++
	return nil
}

// drawPlot draws the loss curves of the compared runs and hs, saves them if asked, and
// shows them in the output block id of disp (if not nil) as one bundle: SVG, PNG and text,
// so that the last frame shows in an untrusted notebook too (see [plots.Figure.Display]).
func (s *settings) drawPlot(disp display, id string, hs []*history.History) error {
	hs = append(append([]*history.History(nil), s.compare...), hs...)
	opts := append([]plots.Option{plots.Size(5.5*vg.Inch, 3*vg.Inch)}, s.plotOpts...)
	fig, err := plots.Curves(hs, opts...)
	if err != nil {
		return fmt.Errorf("live: drawing the plot: %w", err)
	}
	if s.savePath != "" {
		if err := fig.Save(s.savePath); err != nil {
			return fmt.Errorf("live: %w", err)
		}
	}
	if disp == nil {
		return nil
	}
	d, err := fig.DisplayData()
	if err != nil {
		return fmt.Errorf("live: %w", err)
	}
	return disp.update(id, d)
}

// htmlBundle is a MIME bundle of an HTML block and its plain-text form. HTML is shown
// sanitized in an untrusted notebook; the tags used here (div, table, progress) survive.
func htmlBundle(html, text string) *protocol.DisplayData {
	return &protocol.DisplayData{Data: map[protocol.MIMEType]any{
		protocol.MIMETextHTML:  html,
		protocol.MIMETextPlain: text,
	}}
}

// status is what the progress line shows.
type status struct {
	step, total int
	rate        float64 // steps per second; 0 if unknown
	eta         float64 // seconds; -1 if unknown
	metrics     []string
}

func (v *View) status(h *history.History) status {
	last, _ := h.Last()
	s := status{step: last.Step, total: v.total, eta: -1}
	if last.Time > 0 {
		s.rate = float64(last.Step) / last.Time
	}
	if s.rate > 0 && v.total > 0 {
		s.eta = math.Max(0, float64(v.total-last.Step)/s.rate)
	}
	s.metrics = append(s.metrics, "loss "+formatValue(last.Loss))
	names := v.metrics
	if names == nil {
		names = h.MetricNames()
	}
	for _, m := range names {
		val, ok := last.Metrics[m]
		if !ok {
			continue
		}
		s.metrics = append(s.metrics, m+" "+formatValue(val))
	}
	return s
}

func (v *View) showProgress(h *history.History, final bool) error {
	s := v.status(h)
	if v.disp != nil {
		return v.disp.update(v.progressID, htmlBundle(progressHTML(s, final), progressLine(s)))
	}
	line := progressLine(s)
	pad := ""
	n := utf8.RuneCountInString(line)
	if n < v.lastLineLen {
		pad = strings.Repeat(" ", v.lastLineLen-n)
	}
	v.lastLineLen = n
	end := ""
	if final {
		end = "\n"
	}
	if _, err := fmt.Fprintf(v.out, "\r%s%s%s", line, pad, end); err != nil {
		return fmt.Errorf("live: writing progress: %w", err)
	}
	return nil
}

// progressLine formats the terminal line, e.g.
// "[=========>          ]  120/1000  12% | 35.2 steps/s | ETA 0:25 | loss 0.1234 lr 0.001".
func progressLine(s status) string {
	var b strings.Builder
	if s.total > 0 {
		const width = 20
		frac := math.Max(0, math.Min(1, float64(s.step)/float64(s.total)))
		filled := int(frac * width)
		bar := strings.Repeat("=", filled)
		if filled < width {
			bar += ">" + strings.Repeat(" ", width-filled-1)
		}
		fmt.Fprintf(&b, "[%s] %d/%d %3.0f%%", bar, s.step, s.total, 100*frac)
	} else {
		fmt.Fprintf(&b, "step %d", s.step)
	}
	b.WriteString(" | " + formatRate(s.rate))
	if s.eta >= 0 {
		b.WriteString(" | ETA " + formatDuration(s.eta))
	}
	b.WriteString(" | " + strings.Join(s.metrics, " "))
	return b.String()
}

// progressHTML formats the notebook progress block: a <progress> bar and the same facts.
func progressHTML(s status, final bool) string {
	var b strings.Builder
	b.WriteString(`<div style="font-family:monospace;font-size:13px;line-height:1.6">`)
	if s.total > 0 {
		fmt.Fprintf(&b, `<progress value="%d" max="%d" style="width:260px;vertical-align:middle"></progress> `, min(s.step, s.total), s.total)
		fmt.Fprintf(&b, "step %d/%d (%.0f%%)", s.step, s.total, 100*math.Max(0, math.Min(1, float64(s.step)/float64(s.total))))
	} else {
		fmt.Fprintf(&b, "step %d", s.step)
	}
	b.WriteString(" · " + html.EscapeString(formatRate(s.rate)))
	if s.eta >= 0 && !final {
		b.WriteString(" · ETA " + formatDuration(s.eta))
	}
	if final {
		b.WriteString(" · done")
	}
	b.WriteString("<br>" + html.EscapeString(strings.Join(s.metrics, " · ")))
	b.WriteString("</div>")
	return b.String()
}

func formatRate(r float64) string {
	switch {
	case r <= 0 || math.IsNaN(r) || math.IsInf(r, 0):
		return "– steps/s"
	case r >= 100:
		return fmt.Sprintf("%.0f steps/s", r)
	case r >= 1:
		return fmt.Sprintf("%.1f steps/s", r)
	default:
		return fmt.Sprintf("%.2f s/step", 1/r)
	}
}

// formatDuration writes seconds as m:ss or h:mm:ss; "> 1000 h" beyond that, "–" for NaN.
func formatDuration(sec float64) string {
	switch {
	case math.IsNaN(sec):
		return "–"
	case sec >= 1000*3600:
		return "> 1000 h"
	}
	t := int(math.Round(math.Max(0, sec)))
	h, m, s := t/3600, t/60%60, t%60
	if h > 0 {
		return fmt.Sprintf("%d:%02d:%02d", h, m, s)
	}
	return fmt.Sprintf("%d:%02d", m, s)
}

// formatValue writes a metric with 4 significant digits.
func formatValue(x float64) string {
	return fmt.Sprintf("%.4g", x)
}
