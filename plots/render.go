package plots

import (
	"bytes"
	"fmt"
	"image/color"
	"io"
	"os"
	"path/filepath"
	"strings"

	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgpdf"
	"gonum.org/v1/plot/vg/vgsvg"
)

// PNGDPI is the resolution of PNG renderings: twice the 72 points per inch of the figure
// size, so that PNGs stay sharp on high-density screens. It must be in [1, 2400], and a
// PNG at most [MaxPNGPixels].
var PNGDPI = 144

// Formats Encode and Save accept.
const (
	FormatSVG = "svg"
	FormatPNG = "png"
	FormatPDF = "pdf"
)

// svgFontFallback is appended to the font family in SVGs, so that browsers without the
// Liberation fonts use a metric-compatible or similar sans-serif font.
const svgFontFallback = ",Arial,Helvetica,sans-serif"

// Encode renders the figure in format "svg", "png" or "pdf" and writes it to w. A size
// that is not positive or over [MaxSize], or a PNG over [MaxPNGPixels], is an error.
func (f *Figure) Encode(w io.Writer, format string) error {
	if err := checkSize(f.Width, f.Height); err != nil {
		return fmt.Errorf("plots: rendering %s: %w", format, err)
	}
	var err error
	switch strings.ToLower(format) {
	case FormatSVG:
		c := vgsvg.New(f.Width, f.Height)
		f.Draw(draw.New(c))
		var buf bytes.Buffer
		if _, err = c.WriteTo(&buf); err == nil {
			_, err = w.Write(fixSVGFonts(buf.Bytes()))
		}
	case FormatPNG:
		if err := checkPNG(f.Width, f.Height); err != nil {
			return fmt.Errorf("plots: rendering png: %w", err)
		}
		c := vgimg.NewWith(vgimg.UseWH(f.Width, f.Height), vgimg.UseDPI(PNGDPI), vgimg.UseBackgroundColor(color.White))
		f.Draw(draw.New(c))
		_, err = vgimg.PngCanvas{Canvas: c}.WriteTo(w)
	case FormatPDF:
		c := vgpdf.New(f.Width, f.Height)
		f.Draw(draw.New(c))
		_, err = c.WriteTo(w)
	default:
		return fmt.Errorf("plots: unknown format %q (want svg, png or pdf)", format)
	}
	if err != nil {
		return fmt.Errorf("plots: rendering %s: %w", format, err)
	}
	return nil
}

func fixSVGFonts(svg []byte) []byte {
	for _, fam := range []string{"Liberation Sans", "Liberation Serif", "Liberation Mono"} {
		svg = bytes.ReplaceAll(svg, []byte("font-family:"+fam+";"), []byte("font-family:"+fam+svgFontFallback+";"))
	}
	return svg
}

// SVG renders the figure as an SVG document.
func (f *Figure) SVG() ([]byte, error) {
	var buf bytes.Buffer
	if err := f.Encode(&buf, FormatSVG); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// PNG renders the figure as a PNG image of Width x Height points at [PNGDPI].
func (f *Figure) PNG() ([]byte, error) {
	var buf bytes.Buffer
	if err := f.Encode(&buf, FormatPNG); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Save writes the figure to path, as SVG, PNG or PDF according to its extension.
func (f *Figure) Save(path string) (err error) {
	format := strings.TrimPrefix(strings.ToLower(filepath.Ext(path)), ".")
	switch format {
	case FormatSVG, FormatPNG, FormatPDF:
	default:
		return fmt.Errorf("plots: saving %s: unknown extension %q (want .svg, .png or .pdf)", path, filepath.Ext(path))
	}
	var buf bytes.Buffer
	if err := f.Encode(&buf, format); err != nil {
		return fmt.Errorf("plots: saving %s: %w", path, err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("plots: saving figure: %w", err)
	}
	return nil
}
