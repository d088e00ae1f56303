package data

import "fmt"

// Layout is the shape given to the images of a real data set ([LoadMNIST],
// [LoadFashionMNIST], [LoadCIFAR10]). Both layouts hold the same float32 values in
// [0, 1] (pixel/255) in the same order: height, width, then channels.
type Layout int

const (
	// LayoutFlat gives each image as one row: inputs [N, H*W*C] (e.g. [N, 784] for
	// MNIST), as an MLP takes them.
	LayoutFlat Layout = iota
	// LayoutNHWC gives images as [N, H, W, C] (e.g. [N, 28, 28, 1] for MNIST), as
	// models.CNN takes them.
	LayoutNHWC
)

// String names the layout.
func (l Layout) String() string {
	switch l {
	case LayoutFlat:
		return "LayoutFlat"
	case LayoutNHWC:
		return "LayoutNHWC"
	}
	return fmt.Sprintf("Layout(%d)", int(l))
}

func (l Layout) check(fn string) error {
	if l != LayoutFlat && l != LayoutNHWC {
		return fmt.Errorf("%s: layout %s: must be data.LayoutFlat or data.LayoutNHWC", fn, l)
	}
	return nil
}

// imageDataset builds a labelled image dataset from n images of h*w*c bytes each, in
// HWC order, and n class labels (already checked to be classes): inputs float32 pixel/255
// shaped by layout, labels int32 [n, 1].
func imageDataset(name string, pixels []byte, h, w, c int, labels []byte, layout Layout) (*Dataset, error) {
	var scale [256]float32
	for i := range scale {
		scale[i] = float32(i) / 255
	}
	x := make([]float32, len(pixels))
	for i, p := range pixels {
		x[i] = scale[p]
	}
	y := make([]int32, len(labels))
	for i, l := range labels {
		y[i] = int32(l)
	}
	dims := []int{h * w * c}
	if layout == LayoutNHWC {
		dims = []int{h, w, c}
	}
	return New(name, []Column{{Dims: dims, Float32: x}}, []Column{{Dims: []int{1}, Int32: y}})
}
