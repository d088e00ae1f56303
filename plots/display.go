package plots

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"

	"github.com/janpfeifer/gonb/gonbui"
)

// ErrNotNotebook is returned by the Display functions outside a GoNB notebook: save the
// figure with [Figure.Save] instead.
var ErrNotNotebook = errors.New("plots: not running in a GoNB notebook (gonbui.IsNotebook is false); use Figure.Save to write a file")

// Display shows the figure inline in a GoNB notebook as SVG (sharp at any zoom).
// Outside a notebook it returns [ErrNotNotebook]. It returns once GoNB has the figure
// (gonbui.Sync), so a cell that ends right after it does not lose it.
func (f *Figure) Display() error { return display(f.HTML) }

// DisplayPNG shows the figure inline in a GoNB notebook as a PNG image at [PNGDPI],
// drawn at its nominal size. Outside a notebook it returns [ErrNotNotebook].
func (f *Figure) DisplayPNG() error { return display(f.PNGHTML) }

// display sends the HTML that render returns to the notebook and waits until GoNB has it.
func display(render func() (string, error)) error {
	if !gonbui.IsNotebook {
		return ErrNotNotebook
	}
	html, err := render()
	if err != nil {
		return err
	}
	gonbui.DisplayHTML(html)
	gonbui.Sync()
	if err := gonbui.Error(); err != nil {
		return fmt.Errorf("plots: sending to the notebook: %w", err)
	}
	return nil
}

// HTML returns the figure as an inline SVG element wrapped in a <div>, as [Figure.Display]
// sends it; it is also what live views update in place.
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

// PNGHTML returns the figure as an <img> element holding the PNG rendering, sized to the
// figure's nominal size so that it looks the same as the SVG.
func (f *Figure) PNGHTML() (string, error) {
	png, err := f.PNG()
	if err != nil {
		return "", err
	}
	return fmt.Sprintf(`<img width="%.0f" height="%.0f" src="data:image/png;base64,%s">`,
		f.Width.Points()*96/72, f.Height.Points()*96/72, base64.StdEncoding.EncodeToString(png)), nil
}
