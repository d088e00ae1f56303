package plots

import (
	"bytes"
	"encoding/gob"
	"encoding/json"
	"encoding/xml"
	"image/png"
	"strings"
	"testing"

	"github.com/janpfeifer/gonb/gonbui/protocol"

	"github.com/goptlab/goptlab/mlx/history"
)

func displayFigure(t *testing.T) *Figure {
	t.Helper()
	f, err := Curves([]*history.History{synth(t, "adam", "adam", 1, 0.02), synth(t, "sgd", "sgd", 1, 0.01)},
		LogY(), Title("Training loss"))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// checkPNGForm checks the bundle's PNG: valid, with its CSS size in the metadata, and
// DisplayScale times as many pixels.
func checkPNGForm(t *testing.T, d *protocol.DisplayData, wantW, wantH int) {
	t.Helper()
	raw, ok := d.Data[protocol.MIMEImagePNG].([]byte)
	if !ok {
		t.Fatalf("image/png is %T, want []byte", d.Data[protocol.MIMEImagePNG])
	}
	img, err := png.Decode(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("image/png does not decode: %v", err)
	}
	meta, ok := d.Metadata["image/png"].(map[string]int)
	if !ok {
		t.Fatalf(`metadata["image/png"] is %T, want map[string]int`, d.Metadata["image/png"])
	}
	if meta["width"] != wantW || meta["height"] != wantH {
		t.Errorf("metadata size %dx%d, want the figure's CSS size %dx%d", meta["width"], meta["height"], wantW, wantH)
	}
	if b := img.Bounds(); b.Dx() != DisplayScale*meta["width"] || b.Dy() != DisplayScale*meta["height"] {
		t.Errorf("PNG of %dx%d pixels for a CSS size of %dx%d, want %dx as many", b.Dx(), b.Dy(), meta["width"], meta["height"], DisplayScale)
	}
}

func TestDisplayDataForms(t *testing.T) {
	f := displayFigure(t)
	d, err := f.DisplayData()
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := range d.Data {
		keys = append(keys, string(k))
	}
	if len(d.Data) != 3 {
		t.Errorf("bundle has %v, want image/svg+xml, image/png and text/plain", keys)
	}
	// HTML counts as safe in JupyterLab and is preferred to PNG, but sanitized: an <svg> in
	// it vanishes in an untrusted notebook. It must not be in the bundle.
	if _, ok := d.Data[protocol.MIMETextHTML]; ok {
		t.Errorf("bundle has text/html, which an untrusted JupyterLab shows sanitized (no SVG) instead of the PNG")
	}
	if d.DisplayID != "" {
		t.Errorf("DisplayID = %q, want none", d.DisplayID)
	}
	// 6.5 x 3.6 inches at 96 CSS px per inch.
	checkPNGForm(t, d, 624, 346)

	svg, ok := d.Data[protocol.MIMEImageSVG].(string)
	if !ok {
		t.Fatalf("image/svg+xml is %T, want string", d.Data[protocol.MIMEImageSVG])
	}
	if err := xml.Unmarshal([]byte(svg), new(struct{})); err != nil {
		t.Errorf("image/svg+xml is not well-formed XML: %v", err)
	}
	if !strings.Contains(svg, `xmlns="http://www.w3.org/2000/svg"`) || !strings.Contains(svg, ">Training loss<") {
		t.Errorf("image/svg+xml is not the figure's SVG document: %.200s", svg)
	}
	want := `figure "Training loss": adam, sgd`
	if got := d.Data[protocol.MIMETextPlain]; got != want {
		t.Errorf("text/plain = %q, want %q", got, want)
	}
}

func TestPNGDisplayDataForms(t *testing.T) {
	f := displayFigure(t)
	f.Width, f.Height = 3*72, 2*72 // 3 x 2 inches
	d, err := f.PNGDisplayData()
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Data) != 2 || d.Data[protocol.MIMETextPlain] == nil {
		t.Errorf("PNG bundle has %d forms, want image/png and text/plain", len(d.Data))
	}
	checkPNGForm(t, d, 288, 192)
}

// TestDisplayDataCrossesGoNBsPipe sends the bundle the way gonbui.SendData does (gob, into
// a protocol.DisplayData) and writes it as the kernel writes the display_data message
// (JSON): the PNG must arrive base64-encoded and its metadata as {"width", "height"}.
func TestDisplayDataCrossesGoNBsPipe(t *testing.T) {
	d, err := displayFigure(t).DisplayData()
	if err != nil {
		t.Fatal(err)
	}
	var pipe bytes.Buffer
	if err := gob.NewEncoder(&pipe).Encode(d); err != nil {
		t.Fatalf("gob cannot send the bundle to GoNB: %v", err)
	}
	var got protocol.DisplayData
	if err := gob.NewDecoder(&pipe).Decode(&got); err != nil {
		t.Fatalf("GoNB cannot decode the bundle: %v", err)
	}
	msg, err := json.Marshal(map[string]any{"data": got.Data, "metadata": got.Metadata})
	if err != nil {
		t.Fatal(err)
	}
	var back struct {
		Data     map[string]any
		Metadata map[string]map[string]float64
	}
	if err := json.Unmarshal(msg, &back); err != nil {
		t.Fatalf("display_data message %.200s: %v", msg, err)
	}
	if m := back.Metadata["image/png"]; m["width"] != 624 || m["height"] != 346 {
		t.Errorf(`metadata["image/png"] = %v, want width 624 and height 346`, m)
	}
	b64, _ := back.Data["image/png"].(string)
	if !strings.HasPrefix(b64, "iVBORw0KGgo") { // base64 of the PNG signature
		t.Errorf("image/png in the message is %.40q, want base64 PNG data", b64)
	}
}

func TestDescription(t *testing.T) {
	a, err := Curves([]*history.History{synth(t, "adam", "adam", 1, 0.02), synth(t, "adam", "adam", 2, 0.02)})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := a.Description(), "figure: adam (2 runs)"; got != want {
		t.Errorf("Description() = %q, want %q (the legend's labels)", got, want)
	}
	b := displayFigure(t)
	g, err := Grid(2, []*Figure{a, b}, Title("Runs"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := g.Description(), `figure of 2 panels "Runs", "Training loss": adam (2 runs), adam, sgd`; got != want {
		t.Errorf("Description() = %q, want %q", got, want)
	}
}

func TestDisplayDataTooLarge(t *testing.T) {
	f := displayFigure(t)
	f.Width, f.Height = MaxSize, MaxSize // 9600 CSS px a side: 368 Mpixels at 2x
	if _, err := f.DisplayData(); err == nil || !strings.Contains(err.Error(), "over the limit") {
		t.Errorf("DisplayData of a %v figure: %v, want an error about the pixel limit", MaxSize, err)
	}
	f.Width = 0
	if _, err := f.PNGDisplayData(); err == nil {
		t.Error("PNGDisplayData of a zero-width figure: no error")
	}
}
