package plots

import (
	"hash/fnv"
	"image/color"
	"slices"
	"strings"
	"sync"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/goptlab/goptlab/mlx/history"
)

// OkabeIto is the colour-blind-safe palette of Okabe and Ito (2008), in the order plots
// use it. Yellow comes last: it is hard to see on white.
var OkabeIto = []color.RGBA{
	{0x00, 0x72, 0xB2, 0xFF}, // blue
	{0xD5, 0x5E, 0x00, 0xFF}, // vermillion
	{0x00, 0x9E, 0x73, 0xFF}, // bluish green
	{0xE6, 0x9F, 0x00, 0xFF}, // orange
	{0xCC, 0x79, 0xA7, 0xFF}, // reddish purple
	{0x56, 0xB4, 0xE9, 0xFF}, // sky blue
	{0x00, 0x00, 0x00, 0xFF}, // black
	{0xF0, 0xE4, 0x42, 0xFF}, // yellow
}

// Dash patterns, combined with the palette to give more distinct styles than colours.
var dashPatterns = [][]vg.Length{
	nil,
	{vg.Points(6), vg.Points(3)},
	{vg.Points(1.5), vg.Points(2)},
	{vg.Points(6), vg.Points(2.5), vg.Points(1.5), vg.Points(2.5)},
}

// Style is how one optimizer (or any named series) is drawn: its colour and dash pattern.
type Style struct {
	Color  color.RGBA
	Dashes []vg.Length // nil for a solid line
}

// numStyles is the number of distinct styles: the first 7 colours (not yellow) times the dashes.
const numStyles = 7 * 4

func styleAt(i int) Style {
	i %= numStyles
	return Style{Color: OkabeIto[i%7], Dashes: dashPatterns[i/7]}
}

// knownStyles pins the optimizers this project studies to fixed styles, so that they look
// the same in every cell and every notebook, whatever order they are first plotted in.
var knownStyles = map[string]int{
	"adam": 0, "sgd": 1, "adan": 2, "lion": 3, "adamw": 4, "momentum": 5, "lbfgs": 6,
	"rmsprop": 7, "nesterov": 8, "adagrad": 9, "sophia": 10, "muon": 11, "shampoo": 12, "lamb": 13,
	"radam": 14, "nadam": 15, "adafactor": 16, "newton": 17, "gd": 18, "adabelief": 19,
}

var registry = struct {
	sync.Mutex
	byName map[string]Style
	used   map[int]string
}{byName: map[string]Style{}, used: map[int]string{}}

// StyleFor returns the style of the optimizer (or series) called name, the same in every
// plot of a program. Names are compared case-insensitively and without surrounding spaces.
// Well-known optimizer names (adam, sgd, adan, lion, adamw, momentum, lbfgs, ...) have
// fixed styles; other names get a style chosen by a hash of the name, moved to the next
// free style if another name of this program already has it. To make sure two names in a
// notebook never share a style, pin them with [SetStyle] in a top-level func init().
func StyleFor(name string) Style {
	key := normName(name)
	registry.Lock()
	defer registry.Unlock()
	if s, ok := registry.byName[key]; ok {
		return s
	}
	i, known := knownStyles[key]
	if !known {
		h := fnv.New32a()
		h.Write([]byte(key))
		i = int(h.Sum32() % numStyles)
		for range numStyles {
			if owner, taken := registry.used[i]; !taken || owner == key {
				break
			}
			i = (i + 1) % numStyles
		}
	}
	if _, taken := registry.used[i]; !taken {
		registry.used[i] = key
	}
	s := styleAt(i)
	registry.byName[key] = s
	return s
}

// SetStyle pins the style of the optimizer (or series) called name for all later plots.
func SetStyle(name string, s Style) {
	registry.Lock()
	defer registry.Unlock()
	registry.byName[normName(name)] = s
}

func normName(name string) string { return strings.ToLower(strings.TrimSpace(name)) }

// variantStyle returns style s for the variant-th run of the same optimizer in one plot
// (e.g. several learning rates): the optimizer's colour with another dash pattern.
func variantStyle(s Style, variant int) Style {
	if variant == 0 {
		return s
	}
	base := 0
	for i, d := range dashPatterns {
		if slices.Equal(d, s.Dashes) {
			base = i
		}
	}
	s.Dashes = dashPatterns[(base+variant)%len(dashPatterns)]
	return s
}

// styler gives each optimizer its registry style, and each further label of the same
// optimizer within one plot another dash pattern.
type styler struct {
	variants map[string][]string // optimizer -> labels in order of appearance
}

func newStyler() *styler { return &styler{variants: map[string][]string{}} }

func (s *styler) style(h *history.History) Style {
	return s.styleOf(optimizerOf(h), h.Label())
}

func (s *styler) styleOf(optimizer, label string) Style {
	key := normName(optimizer)
	labels := s.variants[key]
	idx := slices.Index(labels, label)
	if idx < 0 {
		idx = len(labels)
		s.variants[key] = append(labels, label)
	}
	return variantStyle(StyleFor(optimizer), idx)
}

// optimizerOf returns the name that picks h's colour: its optimizer, or else its label.
func optimizerOf(h *history.History) string {
	if h.Optimizer != "" {
		return h.Optimizer
	}
	return h.Label()
}

// lineStyle returns the line style for s.
func (s Style) lineStyle() draw.LineStyle {
	return draw.LineStyle{Color: s.Color, Width: vg.Points(1.6), Dashes: s.Dashes}
}

// thinLineStyle returns the style of a secondary line of s, such as a single run drawn
// beside the median of its seeds: thinner and translucent.
func (s Style) thinLineStyle() draw.LineStyle {
	return draw.LineStyle{Color: withAlpha(s.Color, 0.6), Width: vg.Points(0.9), Dashes: s.Dashes}
}

// withAlpha returns c with opacity a in [0,1].
func withAlpha(c color.RGBA, a float64) color.NRGBA {
	return color.NRGBA{R: c.R, G: c.G, B: c.B, A: uint8(255*a + 0.5)}
}

// Font sizes of the theme.
var (
	titleSize  = vg.Points(13)
	labelSize  = vg.Points(11)
	tickSize   = vg.Points(9.5)
	legendSize = vg.Points(10)
)

var sansFont = font.Font{Typeface: "Liberation", Variant: "Sans"}

var gridColor = color.Gray{Y: 225}

// newPlot returns a plot with the theme applied: sans-serif fonts, light grid lines.
func newPlot(title, xlabel, ylabel string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.Title.TextStyle.Font = font.From(sansFont, titleSize)
	p.Title.Padding = vg.Points(6)
	for _, a := range []*plot.Axis{&p.X, &p.Y} {
		a.Label.TextStyle.Font = font.From(sansFont, labelSize)
		a.Tick.Label.Font = font.From(sansFont, tickSize)
		a.Label.Padding = vg.Points(3)
		a.Padding = vg.Points(4)
		a.Tick.Length = vg.Points(4)
		a.LineStyle.Color = color.Gray{Y: 90}
		a.Tick.LineStyle.Color = color.Gray{Y: 90}
		a.Tick.Marker = linearTicks{}
	}
	p.X.Label.Text = xlabel
	p.Y.Label.Text = ylabel
	p.Legend.TextStyle.Font = font.From(sansFont, legendSize)
	g := plotter.NewGrid()
	g.Vertical.Color = gridColor
	g.Horizontal.Color = gridColor
	g.Vertical.Width = vg.Points(0.5)
	g.Horizontal.Width = vg.Points(0.5)
	p.Add(g)
	return p
}
