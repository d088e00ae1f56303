package data

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// The CIFAR-10 binary format (Krizhevsky, 2009; "CIFAR-10 binary version"): each file is
// a sequence of records of one label byte (the class, 0..9) and 3072 pixel bytes, the
// 1024 red values of the 32x32 image, then the green, then the blue, each plane row by
// row.
const (
	cifarSide    = 32
	cifarPixels  = 3 * cifarSide * cifarSide
	cifarRecord  = 1 + cifarPixels
	cifarClasses = 10
)

// cifarTrainFiles and cifarTestFile are the file names of the binary version's splits.
var (
	cifarTrainFiles = []string{"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin"}
	cifarTestFile   = "test_batch.bin"
)

// cifarSubdir is the folder that the binary version's archive (cifar-10-binary.tar.gz)
// unpacks to: LoadCIFAR10 also looks there.
const cifarSubdir = "cifar-10-batches-bin"

// CIFARBatch is the content of one CIFAR-10 binary file: N labelled 32x32 colour images.
type CIFARBatch struct {
	// Labels holds the N classes, each in 0..9.
	Labels []byte
	// Pixels holds N*3072 bytes in the file's order: for each image its red plane, then
	// its green and its blue one, each 32x32 row-major.
	Pixels []byte
}

// Len returns the number of images.
func (b *CIFARBatch) Len() int { return len(b.Labels) }

// ReadCIFAR reads one CIFAR-10 binary file (e.g. data_batch_1.bin) from r, raw or
// gzip-compressed. name names the file in errors. The file must hold at least one
// record, a whole number of 3073-byte records (at most [MaxDecodedBytes] in all), and
// every label must be a class in 0..9.
func ReadCIFAR(r io.Reader, name string) (*CIFARBatch, error) {
	b, err := readCIFAR(r, name)
	if err != nil {
		return nil, fmt.Errorf("data.ReadCIFAR: %w", err)
	}
	return b, nil
}

func readCIFAR(r io.Reader, name string) (*CIFARBatch, error) {
	raw, err := readMaybeGzip(r, name)
	if err != nil {
		return nil, err
	}
	if len(raw) == 0 || len(raw)%cifarRecord != 0 {
		hint := ""
		if len(raw) > 0 && len(raw)%(cifarRecord+1) == 0 {
			hint = " (a multiple of 3074: CIFAR-100's records, with two label bytes, are not supported)"
		}
		return nil, fmt.Errorf("%s: %d bytes is not a positive whole number of CIFAR-10 records (%d bytes each: 1 label byte and %d pixel bytes)%s",
			name, len(raw), cifarRecord, cifarPixels, hint)
	}
	n := len(raw) / cifarRecord
	batch := &CIFARBatch{Labels: make([]byte, n), Pixels: make([]byte, n*cifarPixels)}
	for i := range n {
		rec := raw[i*cifarRecord : (i+1)*cifarRecord]
		if rec[0] >= cifarClasses {
			return nil, fmt.Errorf("%s: record %d (byte offset %d): label %d out of range: must be in [0, %d)",
				name, i, i*cifarRecord, rec[0], cifarClasses)
		}
		batch.Labels[i] = rec[0]
		copy(batch.Pixels[i*cifarPixels:], rec[1:])
	}
	return batch, nil
}

// LoadCIFAR10 loads CIFAR-10 (60000 32x32 colour images of 10 classes) from the binary
// version's files in dir, or in $GOPTLAB_CIFAR10_DIR when dir is empty: train is
// data_batch_1.bin to data_batch_5.bin in order (50000 examples), test is test_batch.bin
// (10000). The folder may also be the one holding cifar-10-batches-bin/, as the archive
// unpacks. Inputs are float32 in [0, 1] (pixel/255) shaped by layout, [N, 3072] or
// [N, 32, 32, 3], channels last in both; labels int32 [N, 1] in 0..9. Each file is
// checked as in [ReadCIFAR] (no checksum: the data set is not shipped here, so no sum
// could be checked against it).
func LoadCIFAR10(dir string, layout Layout) (train, test *Dataset, err error) {
	const fn = "data.LoadCIFAR10"
	if err := layout.check(fn); err != nil {
		return nil, nil, err
	}
	fix := fmt.Sprintf("download the CIFAR-10 binary version (cifar-10-binary.tar.gz), unpack it and pass its folder, or set %s to it", EnvCIFAR10Dir)
	from := "the dir argument"
	if dir == "" {
		dir, from = os.Getenv(EnvCIFAR10Dir), "$"+EnvCIFAR10Dir
		if dir == "" {
			return nil, nil, fmt.Errorf("%s: no folder: dir is empty and $%s is not set: %s", fn, EnvCIFAR10Dir, fix)
		}
	}
	if sub := filepath.Join(dir, cifarSubdir); !isFile(filepath.Join(dir, cifarTestFile)) && isFile(filepath.Join(sub, cifarTestFile)) {
		dir = sub
	}
	load := func(split string, files []string) (*Dataset, error) {
		var labels, pixels []byte
		for _, f := range files {
			path, err := findFile(dir, f)
			if err != nil {
				return nil, err
			}
			b, err := readCIFARFile(path)
			if err != nil {
				return nil, err
			}
			labels = append(labels, b.Labels...)
			pixels = append(pixels, planesToHWC(b.Pixels)...)
		}
		return imageDataset("cifar10-"+split, pixels, cifarSide, cifarSide, 3, labels, layout)
	}
	if train, err = load("train", cifarTrainFiles); err == nil {
		test, err = load("test", []string{cifarTestFile})
	}
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w (folder from %s): %s", fn, err, from, fix)
	}
	return train, test, nil
}

func readCIFARFile(path string) (*CIFARBatch, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readCIFAR(f, path)
}

func isFile(path string) bool {
	info, err := os.Stat(path)
	return err == nil && info.Mode().IsRegular()
}

// planesToHWC reorders CIFAR images from the file's colour planes (CHW) to channels last.
func planesToHWC(planes []byte) []byte {
	const plane = cifarSide * cifarSide
	out := make([]byte, len(planes))
	for img := 0; img < len(planes); img += cifarPixels {
		src, dst := planes[img:img+cifarPixels], out[img:img+cifarPixels]
		for p := range plane {
			dst[3*p] = src[p]
			dst[3*p+1] = src[plane+p]
			dst[3*p+2] = src[2*plane+p]
		}
	}
	return out
}
