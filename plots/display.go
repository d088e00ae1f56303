package plots

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"image/color"
	"math"
	"strings"

	"github.com/janpfeifer/gonb/gonbui"
	"github.com/janpfeifer/gonb/gonbui/protocol"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// ErrNotNotebook is returned by the Display functions outside a GoNB notebook: save the
// figure with [Figure.Save] instead.
var ErrNotNotebook = errors.New("plots: not running in a GoNB notebook (gonbui.IsNotebook is false); use Figure.Save to write a file")

// DisplayScale is the number of PNG pixels per CSS pixel of the PNG that [Figure.Display]
// and [Figure.DisplayPNG] send: 2, so that the PNG is sharp on high-density screens. The
// figure shows at its nominal size, Width x Height points at 96 CSS pixels per inch.
const DisplayScale = 2

// cssPixelsPerInch is the CSS reference: 96 px per inch, 72 points per inch.
const cssPixelsPerInch = 96

// Display shows the figure inline in a GoNB notebook, as one display holding the same
// figure in three forms (see [Figure.DisplayData]): SVG, PNG and a line of text. Each
// viewer shows the best form it trusts (see the package documentation): SVG in a notebook
// run in JupyterLab and in HTML exports, PNG in a notebook someone else shared (untrusted)
// and in PDF exports. Outside a notebook it returns [ErrNotNotebook]. It returns once GoNB
// has the figure (gonbui.Sync), so a cell that ends right after it does not lose it.
func (f *Figure) Display() error { return display(f.DisplayData) }

// DisplayPNG shows the figure inline in a GoNB notebook as a PNG only (with its text
// description; see [Figure.PNGDisplayData]). Outside a notebook it returns [ErrNotNotebook].
func (f *Figure) DisplayPNG() error { return display(f.PNGDisplayData) }

// display sends the bundle that render returns to the notebook and waits until GoNB has it.
func display(render func() (*protocol.DisplayData, error)) error {
	if !gonbui.IsNotebook {
		return ErrNotNotebook
	}
	data, err := render()
	if err != nil {
		return err
	}
	gonbui.SendData(data)
	gonbui.Sync()
	if err := gonbui.Error(); err != nil {
		return fmt.Errorf("plots: sending to the notebook: %w", err)
	}
	return nil
}

// DisplayData returns the figure as one Jupyter MIME bundle, what [Figure.Display] sends:
//
//   - "image/svg+xml": the SVG document (vector, sharp at any zoom);
//   - "image/png": a PNG of [DisplayScale] pixels per CSS pixel, with metadata
//     {"image/png": {"width": W, "height": H}} giving its CSS size, so that it shows at the
//     figure's nominal size;
//   - "text/plain": a one-line description (the title, the panels, the legend), for text
//     front ends and screen readers.
//
// There is deliberately no "text/html" form (see the package documentation). Set its
// DisplayID to update a display in place.
func (f *Figure) DisplayData() (*protocol.DisplayData, error) {
	svg, err := f.SVG()
	if err != nil {
		return nil, err
	}
	d, err := f.PNGDisplayData()
	if err != nil {
		return nil, err
	}
	d.Data[protocol.MIMEImageSVG] = string(svg)
	return d, nil
}

// PNGDisplayData returns the bundle that [Figure.DisplayPNG] sends: "image/png" at
// [DisplayScale] with its CSS size in the metadata, and "text/plain".
func (f *Figure) PNGDisplayData() (*protocol.DisplayData, error) {
	png, w, h, err := f.displayPNG()
	if err != nil {
		return nil, err
	}
	return &protocol.DisplayData{
		Data: map[protocol.MIMEType]any{
			protocol.MIMEImagePNG:  png,
			protocol.MIMETextPlain: f.Description(),
		},
		// map[string]int is one of the types gonbui's protocol registers with gob: the
		// metadata travels to the kernel as it is.
		Metadata: map[string]any{string(protocol.MIMEImagePNG): map[string]int{"width": w, "height": h}},
	}, nil
}

// cssSize returns the figure's size in CSS pixels, rounded.
func (f *Figure) cssSize() (w, h int) {
	return int(math.Round(f.Width.Points() * cssPixelsPerInch / 72)),
		int(math.Round(f.Height.Points() * cssPixelsPerInch / 72))
}

// displayPNG renders the figure as a PNG of exactly DisplayScale x its CSS size in pixels
// (drawn on a canvas of the CSS size, less than a pixel from the nominal one) and returns
// it with that CSS size.
func (f *Figure) displayPNG() (png []byte, w, h int, err error) {
	if err := checkSize(f.Width, f.Height); err != nil {
		return nil, 0, 0, fmt.Errorf("plots: rendering png: %w", err)
	}
	w, h = f.cssSize()
	w, h = max(w, 1), max(h, 1)
	const dpi = DisplayScale * cssPixelsPerInch
	if err := checkPixels(w*DisplayScale, h*DisplayScale, fmt.Sprintf("a display PNG of %d x %d CSS pixels at %dx", w, h, DisplayScale)); err != nil {
		return nil, 0, 0, fmt.Errorf("plots: rendering png: %w", err)
	}
	pt := vg.Length(72.0 / cssPixelsPerInch)
	c := vgimg.NewWith(vgimg.UseWH(vg.Length(w)*pt, vg.Length(h)*pt), vgimg.UseDPI(dpi), vgimg.UseBackgroundColor(color.White))
	f.Draw(draw.New(c))
	var buf bytes.Buffer
	if _, err := (vgimg.PngCanvas{Canvas: c}).WriteTo(&buf); err != nil {
		return nil, 0, 0, fmt.Errorf("plots: rendering png: %w", err)
	}
	return buf.Bytes(), w, h, nil
}

// Description returns a one-line text description of the figure: its title, the titles of
// its panels and its legend labels, e.g. `figure "Training loss": adam, sgd`. It is the
// "text/plain" form of [Figure.DisplayData].
func (f *Figure) Description() string {
	var titles []string
	if f.title != "" {
		titles = append(titles, f.title)
	}
	for _, p := range f.panels {
		if t := p.plot.Title.Text; t != "" {
			titles = append(titles, t)
		}
	}
	var b strings.Builder
	b.WriteString("figure")
	if len(f.panels) > 1 {
		fmt.Fprintf(&b, " of %d panels", len(f.panels))
	}
	for i, t := range titles {
		sep := ", "
		if i == 0 {
			sep = " "
		}
		fmt.Fprintf(&b, "%s%q", sep, t)
	}
	labels := uniqueStrings(f.Labels())
	if len(labels) > 0 {
		b.WriteString(": " + strings.Join(labels, ", "))
	}
	return b.String()
}

func uniqueStrings(ss []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range ss {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// HTML returns the figure as an inline SVG element wrapped in a <div>, for pages of one's
// own. Notebook displays use [Figure.DisplayData], which JupyterLab also shows in an
// untrusted notebook.
func (f *Figure) HTML() (string, error) {
	svg, err := f.SVG()
	if err != nil {
		return "", err
	}
	// Drop the XML prolog and comment: they are not allowed inside HTML.
	if i := bytes.Index(svg, []byte("<svg")); i > 0 {
		svg = svg[i:]
	}
	return "<div>" + string(svg) + "</div>", nil
}

// PNGHTML returns the figure as an <img> element holding the PNG rendering at [PNGDPI],
// sized to the figure's nominal size in CSS pixels so that it looks the same as the SVG.
func (f *Figure) PNGHTML() (string, error) {
	png, err := f.PNG()
	if err != nil {
		return "", err
	}
	w, h := f.cssSize()
	return fmt.Sprintf(`<img width="%d" height="%d" src="data:image/png;base64,%s">`,
		w, h, base64.StdEncoding.EncodeToString(png)), nil
}
