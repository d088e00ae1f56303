package plots

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"image"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"gonum.org/v1/plot/vg"

	"github.com/goptlab/goptlab/mlx/history"
)

// reviewDir, when set (PLOTS_REVIEW_DIR=/tmp/plots-review go test ./plots), receives a PNG
// and an SVG of every figure the tests render, for a person to look at.
var reviewDir = os.Getenv("PLOTS_REVIEW_DIR")

// rendered is a figure rendered both ways.
type rendered struct {
	svg string
	img image.Image
}

// render renders f to SVG and PNG, checks the PNG has the expected pixel size, and saves
// both under reviewDir if set.
func render(t *testing.T, f *Figure, name string) rendered {
	t.Helper()
	svg, err := f.SVG()
	if err != nil {
		t.Fatalf("SVG: %v", err)
	}
	pngBytes, err := f.PNG()
	if err != nil {
		t.Fatalf("PNG: %v", err)
	}
	img, err := png.Decode(bytes.NewReader(pngBytes))
	if err != nil {
		t.Fatalf("decoding PNG: %v", err)
	}
	wantW, wantH := sizeInPixels(f.Width, f.Height)
	if b := img.Bounds(); b.Dx() != wantW || b.Dy() != wantH {
		t.Errorf("PNG is %dx%d, want %dx%d", b.Dx(), b.Dy(), wantW, wantH)
	}
	if !strings.HasPrefix(strings.TrimSpace(string(svg)), "<?xml") || !strings.Contains(string(svg), "<svg") {
		t.Errorf("SVG output does not look like SVG: %.100s", svg)
	}
	dec := xml.NewDecoder(bytes.NewReader(svg))
	for {
		if _, err := dec.Token(); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("SVG is not well-formed XML: %v", err)
		}
	}
	if reviewDir != "" {
		if err := os.MkdirAll(reviewDir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(reviewDir, name+".png"), pngBytes, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(reviewDir, name+".svg"), svg, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return rendered{svg: string(svg), img: img}
}

// synth returns a seeded synthetic history, failing the test on error.
func synth(t testing.TB, name, opt string, seed int64, rate float64) *history.History {
	t.Helper()
	h, err := history.Synthetic(history.SyntheticConfig{
		Name: name, Optimizer: opt, Seed: seed, Steps: 500, LogEvery: 5,
		Loss0: 2.3, Floor: 0.05, Rate: rate, Noise: 0.08, LR: 1e-3, SecondsPerStep: 0.01, EvalsPerStep: 2,
	})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// hexColor returns the colour of s as "#RRGGBB".
func hexColor(s Style) string {
	return fmt.Sprintf("#%02X%02X%02X", s.Color.R, s.Color.G, s.Color.B)
}

// sizeInPixels returns the pixel size of the PNG rendering of a w x h figure.
func sizeInPixels(w, h vg.Length) (int, int) {
	return int(w.Dots(float64(PNGDPI)) + 0.5), int(h.Dots(float64(PNGDPI)) + 0.5)
}

// countColor counts the pixels of img within tolerance of colour c.
func countColor(img image.Image, c Style) int {
	n := 0
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bb, _ := img.At(x, y).RGBA()
			if near(r>>8, c.Color.R) && near(g>>8, c.Color.G) && near(bb>>8, c.Color.B) {
				n++
			}
		}
	}
	return n
}

func near(a uint32, b uint8) bool {
	d := int(a) - int(b)
	return d >= -6 && d <= 6
}

var fillRE = regexp.MustCompile(`fill:#([0-9A-Fa-f]{6});fill-opacity:0\.[0-9]+`)

// hasTranslucentFill reports whether the SVG fills a shape with a colour within rounding of
// s's colour, at an opacity below 1.
func hasTranslucentFill(svg string, s Style) bool {
	for _, m := range fillRE.FindAllStringSubmatch(svg, -1) {
		v, err := strconv.ParseUint(m[1], 16, 32)
		if err != nil {
			continue
		}
		if near(uint32(v>>16), s.Color.R) && near(uint32(v>>8&255), s.Color.G) && near(uint32(v&255), s.Color.B) {
			return true
		}
	}
	return false
}
