// Package live shows the progress of a training run while it trains: in a GoNB notebook,
// a progress bar (step, steps/s, ETA, latest metrics) and a loss plot, both updated in
// place, so the cell output does not grow; elsewhere, one terminal line rewritten with a
// carriage return.
//
// A training loop calls [View.Update] after each logged step (it has the signature of the
// callback func(*history.History) error), and [View.Close] at the end:
//
//	view := live.New(steps, live.Every(50), live.PlotOptions(plots.LogY()))
//	defer view.Close()
//	... train, calling view.Update(h) after each logged step ...
package live

import (
	"fmt"
	"html"
	"io"
	"math"
	"os"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/janpfeifer/gonb/gonbui"
	"gonum.org/v1/plot/vg"

	"github.com/goptlab/goptlab/mlx/history"
	"github.com/goptlab/goptlab/plots"
)

// View is a live progress display of one training run. It is not safe for concurrent use:
// call it from the training goroutine.
type View struct {
	total       int
	every       int
	minInterval time.Duration
	metrics     []string
	plotOpts    []plots.Option
	compare     []*history.History
	out         io.Writer
	savePath    string

	disp       display // nil outside a notebook
	now        func() time.Time
	progressID string
	plotID     string

	updates      int
	lastRefresh  time.Time
	lastLineLen  int
	last         *history.History
	lastPlotStep int
	redraws      int
	closed       bool
}

// display updates a block of notebook output in place.
type display interface {
	update(id, html string) error
	// flush returns once the notebook has every update sent so far.
	flush() error
}

type gonbDisplay struct{}

func (gonbDisplay) update(id, h string) error {
	gonbui.UpdateHTML(id, h)
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

// Option configures a [View].
type Option func(*View)

// Every redraws the loss plot every n updates (default 50; the first and the last update
// are always drawn). The progress bar is refreshed at every update, at most once per
// [MinInterval].
func Every(n int) Option { return func(v *View) { v.every = n } }

// MinInterval limits progress refreshes to one per d (default 200ms), so that fast loops
// do not flood the notebook or terminal. Zero refreshes at every update.
func MinInterval(d time.Duration) Option { return func(v *View) { v.minInterval = d } }

// Metrics chooses the metrics shown after the loss in the progress line (default: all the
// latest record has, sorted by name).
func Metrics(names ...string) Option { return func(v *View) { v.metrics = names } }

// PlotOptions are passed to [plots.Curves] for the live plot, e.g. plots.LogY().
func PlotOptions(opts ...plots.Option) Option {
	return func(v *View) { v.plotOpts = append(v.plotOpts, opts...) }
}

// Compare draws finished runs in the live plot next to the one training, e.g. a baseline.
func Compare(hs ...*history.History) Option {
	return func(v *View) { v.compare = append(v.compare, hs...) }
}

// Output sets where the terminal progress line goes outside a notebook (default os.Stderr).
func Output(w io.Writer) Option { return func(v *View) { v.out = w } }

// SaveTo also saves the plot to path (.svg, .png or .pdf) at each redraw: outside a
// notebook, the way to watch the curve.
func SaveTo(path string) Option { return func(v *View) { v.savePath = path } }

// New returns a view of a run of total steps (0 if unknown: no percentage or ETA then).
// In a GoNB notebook (gonbui.IsNotebook) it updates two output blocks in place; elsewhere
// it writes a progress line to the terminal.
func New(total int, opts ...Option) *View {
	v := &View{total: total, every: 50, minInterval: 200 * time.Millisecond, out: os.Stderr, now: time.Now}
	for _, o := range opts {
		if o != nil {
			o(v)
		}
	}
	if v.every < 1 {
		v.every = 1
	}
	if gonbui.IsNotebook {
		v.disp = gonbDisplay{}
	}
	id := gonbui.UniqueId()
	v.progressID, v.plotID = "live_progress_"+id, "live_plot_"+id
	return v
}

// Update shows the latest state of h. Call it after each logged step; it returns errors
// from drawing the plot (e.g. a non-positive loss with plots.LogY()) or from the notebook
// connection, with context. A history without records is ignored.
func (v *View) Update(h *history.History) error {
	if v.closed {
		return fmt.Errorf("live: Update after Close")
	}
	if h == nil {
		return fmt.Errorf("live: Update with a nil history")
	}
	if len(h.Records) == 0 {
		return nil
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
	if v.closed {
		return nil
	}
	v.closed = true
	if v.last == nil {
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
func (v *View) Redraws() int { return v.redraws }

func (v *View) redraw(h *history.History) error {
	last, _ := h.Last()
	v.lastPlotStep = last.Step
	if v.disp == nil && v.savePath == "" {
		return nil // no plot outside a notebook unless asked to save it
	}
	hs := append(append([]*history.History(nil), v.compare...), h)
	opts := append([]plots.Option{plots.Size(5.5*vg.Inch, 3*vg.Inch)}, v.plotOpts...)
	fig, err := plots.Curves(hs, opts...)
	if err != nil {
		return fmt.Errorf("live: drawing the plot: %w", err)
	}
	v.redraws++
	if v.savePath != "" {
		if err := fig.Save(v.savePath); err != nil {
			return fmt.Errorf("live: %w", err)
		}
	}
	if v.disp != nil {
		out, err := fig.HTML()
		if err != nil {
			return fmt.Errorf("live: %w", err)
		}
		return v.disp.update(v.plotID, out)
	}
	return nil
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
		return v.disp.update(v.progressID, progressHTML(s, final))
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
