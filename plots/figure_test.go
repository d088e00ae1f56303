package plots

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/janpfeifer/gonb/gonbui"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"

	"github.com/goptlab/goptlab/mlx/history"
)

func TestSaveFormats(t *testing.T) {
	f, err := Curves([]*history.History{synth(t, "adam", "adam", 1, 0.02)}, Size(4*vg.Inch, 3*vg.Inch))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	magic := map[string]string{"svg": "<?xml", "png": "\x89PNG", "pdf": "%PDF"}
	for ext, m := range magic {
		path := filepath.Join(dir, "fig."+ext)
		if err := f.Save(path); err != nil {
			t.Fatalf("Save(%s): %v", ext, err)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(b, []byte(m)) {
			t.Errorf("%s file starts with %q, want %q", ext, b[:min(8, len(b))], m)
		}
	}
	svg, _ := f.SVG()
	if !bytes.Contains(svg, []byte(`width="288pt" height="216pt"`)) {
		t.Errorf("SVG size is not 4x3 inches: %.200s", svg)
	}
	if !bytes.Contains(svg, []byte("font-family:Liberation Sans,Arial,Helvetica,sans-serif")) {
		t.Error("SVG fonts lack the sans-serif fallback")
	}
	if err := f.Save(filepath.Join(dir, "fig.gif")); err == nil {
		t.Error("Save(.gif): no error")
	}
	if err := f.Encode(&bytes.Buffer{}, "bmp"); err == nil {
		t.Error("Encode(bmp): no error")
	}
	f.Width = 0
	if _, err := f.PNG(); err == nil {
		t.Error("zero width: no error")
	}
}

func TestDisplayOutsideNotebook(t *testing.T) {
	if gonbui.IsNotebook {
		t.Skip("running inside GoNB")
	}
	f, err := Curves([]*history.History{synth(t, "adam", "adam", 1, 0.02)})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Display(); !errors.Is(err, ErrNotNotebook) {
		t.Errorf("Display() = %v, want ErrNotNotebook", err)
	}
	if err := f.DisplayPNG(); !errors.Is(err, ErrNotNotebook) {
		t.Errorf("DisplayPNG() = %v, want ErrNotNotebook", err)
	}
	h, err := f.HTML()
	if err != nil || !strings.HasPrefix(h, "<div><svg") || strings.Contains(h, "<?xml") {
		t.Errorf("HTML() = %.60q, %v; want an inline <svg> without XML prolog", h, err)
	}
	p, err := f.PNGHTML()
	if err != nil || !strings.HasPrefix(p, `<img width="624" height="346" src="data:image/png;base64,`) {
		t.Errorf("PNGHTML() = %.80q, %v", p, err)
	}
}

// TestLegendPlacement checks that the outside legend sits right of the data area, and that
// the inside legend goes to the emptiest corner.
func TestLegendPlacement(t *testing.T) {
	// A loss curve from top left to bottom right leaves the top right corner empty.
	h := history.New("falling", "adam", 0)
	for i := 1; i <= 50; i++ {
		h.Add(history.Record{Step: i, Loss: 1 / float64(i)})
	}
	f, err := Curves([]*history.History{h}, Legend(LegendInside))
	if err != nil {
		t.Fatal(err)
	}
	render(t, f, "legend_inside")
	pn := f.panels[0]
	c := draw.New(vgsvg.New(f.Width, f.Height))
	pn.plot.Draw(c)
	dc := pn.plot.DataCanvas(c)
	l := pn.gonumLegend()
	w, hgt := pn.legendSize(&l)
	r := pn.emptiestCorner(dc, w, hgt)
	if !(r.Min.X > dc.Center().X && r.Min.Y > dc.Center().Y) {
		t.Errorf("legend at %v, want the top right corner of %v", r, dc.Rectangle)
	}
	// A curve from bottom left to top right leaves the top left corner empty.
	up := history.New("rising", "adam", 0)
	for i := 1; i <= 50; i++ {
		up.Add(history.Record{Step: i, Loss: float64(i * i)})
	}
	f, err = Curves([]*history.History{up}, Legend(LegendInside))
	if err != nil {
		t.Fatal(err)
	}
	pn = f.panels[0]
	pn.plot.Draw(c)
	dc = pn.plot.DataCanvas(c)
	r = pn.emptiestCorner(dc, w, hgt)
	if !(r.Max.X < dc.Center().X && r.Min.Y > dc.Center().Y) {
		t.Errorf("legend at %v, want the top left corner of %v", r, dc.Rectangle)
	}
	// No legend: no label text in the SVG.
	f, err = Curves([]*history.History{up}, Legend(LegendNone))
	if err != nil {
		t.Fatal(err)
	}
	if rr := render(t, f, "legend_none"); strings.Contains(rr.svg, ">rising<") {
		t.Error("Legend(LegendNone) still draws the legend")
	}
}

func TestStyles(t *testing.T) {
	if x, y := StyleFor("Adam"), StyleFor(" adam "); x.Color != y.Color || !slices.Equal(x.Dashes, y.Dashes) {
		t.Error("style lookup is not case- and space-insensitive")
	}
	known := []string{"adam", "sgd", "adan", "lion", "adamw", "momentum", "lbfgs"}
	seen := map[string]bool{}
	for _, k := range known {
		s := StyleFor(k)
		key := hexColor(s) + strings.Repeat("-", len(s.Dashes))
		if seen[key] {
			t.Errorf("%s shares a style with another known optimizer", k)
		}
		seen[key] = true
		if s.Dashes != nil {
			t.Errorf("%s: the first seven known optimizers should be solid lines", k)
		}
	}
	// Unknown names get distinct styles in one program, stable on repeated calls.
	a, b := StyleFor("my-optimizer-1"), StyleFor("my-optimizer-2")
	if hexColor(a) == hexColor(b) && slices.Equal(a.Dashes, b.Dashes) {
		t.Error("two unknown names share a style")
	}
	if !slices.Equal(StyleFor("my-optimizer-1").Dashes, a.Dashes) || StyleFor("my-optimizer-1").Color != a.Color {
		t.Error("style of an unknown name changed between calls")
	}
	SetStyle("pinned", Style{Color: OkabeIto[7]})
	if StyleFor("Pinned").Color != OkabeIto[7] {
		t.Error("SetStyle was not honoured")
	}
	if v := variantStyle(StyleFor("adam"), 1); v.Color != StyleFor("adam").Color || v.Dashes == nil {
		t.Error("a variant should keep the colour and change the dashes")
	}
}
