package data_test

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/goptlab/goptlab/mlx/data"
)

// cifarRecords makes n CIFAR-10 records (label, then red, green, blue planes) with
// pseudo-random pixels and the given labels.
func cifarRecords(rng *rand.Rand, labels ...byte) []byte {
	var b []byte
	for _, l := range labels {
		b = append(b, l)
		for range 3072 {
			b = append(b, byte(rng.IntN(256)))
		}
	}
	return b
}

func TestReadCIFARSplitsRecords(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	file := cifarRecords(rng, 3, 0, 9)
	for _, in := range [][]byte{file, gzipBytes(t, file)} {
		b, err := data.ReadCIFAR(bytes.NewReader(in), "batch.bin")
		if err != nil {
			t.Fatal(err)
		}
		if b.Len() != 3 || !slices.Equal(b.Labels, []byte{3, 0, 9}) {
			t.Fatalf("labels %v, want [3 0 9]", b.Labels)
		}
		for i := range 3 {
			if !bytes.Equal(b.Pixels[i*3072:(i+1)*3072], file[i*3073+1:(i+1)*3073]) {
				t.Fatalf("image %d: pixels differ from the record", i)
			}
		}
	}
}

func TestReadCIFARRejectsBadFiles(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	good := cifarRecords(rng, 1, 2)
	badLabel := slices.Clone(good)
	badLabel[3073] = 10
	for _, tc := range []struct {
		name string
		in   []byte
		want []string
	}{
		{"empty", nil, []string{"0 bytes is not a positive whole number of CIFAR-10 records"}},
		{"truncated", good[:len(good)-1], []string{"6145 bytes is not a positive whole number", "3073 bytes each"}},
		{"cifar-100", make([]byte, 2*3074), []string{"CIFAR-100"}},
		{"label", badLabel, []string{"record 1 (byte offset 3073): label 10 out of range"}},
		{"gzip", gzipBytes(t, good)[:100], []string{"bad gzip data (truncated or corrupted)"}},
	} {
		_, err := data.ReadCIFAR(bytes.NewReader(tc.in), "batch.bin")
		wantErr(t, err, append(tc.want, "data.ReadCIFAR: batch.bin: ")...)
	}
}

// writeCIFARDir writes the six files of the binary version, with the given number of
// records in each batch, and returns the records of train (in order) and test.
func writeCIFARDir(t *testing.T, dir string, sizes [6]int) (train, test []byte) {
	t.Helper()
	rng := rand.New(rand.NewPCG(3, 4))
	names := []string{"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin"}
	for i, name := range names {
		labels := make([]byte, sizes[i])
		for j := range labels {
			labels[j] = byte(rng.IntN(10))
		}
		recs := cifarRecords(rng, labels...)
		if err := os.WriteFile(filepath.Join(dir, name), recs, 0o644); err != nil {
			t.Fatal(err)
		}
		if i < 5 {
			train = append(train, recs...)
		} else {
			test = recs
		}
	}
	return train, test
}

// checkCIFAR checks a loaded split against its records: labels in order, and the value
// at (image, y, x, channel) is the record's plane `channel` at y*32+x, over 255.
func checkCIFAR(t *testing.T, ds *data.Dataset, recs []byte, layout data.Layout) {
	t.Helper()
	n := len(recs) / 3073
	if ds.Len() != n {
		t.Fatalf("%s: %d examples, want %d", ds.Name(), ds.Len(), n)
	}
	in, lb := ds.Inputs()[0], ds.Labels()[0]
	wantDims := []int{3072}
	if layout == data.LayoutNHWC {
		wantDims = []int{32, 32, 3}
	}
	if !slices.Equal(in.Dims, wantDims) || !slices.Equal(lb.Dims, []int{1}) {
		t.Fatalf("%s: dims %v and %v, want %v and [1]", ds.Name(), in.Dims, lb.Dims, wantDims)
	}
	for i := range n {
		rec := recs[i*3073 : (i+1)*3073]
		if lb.Int32[i] != int32(rec[0]) {
			t.Fatalf("%s: example %d has label %d, want %d", ds.Name(), i, lb.Int32[i], rec[0])
		}
		for _, p := range [][3]int{{0, 0, 0}, {0, 1, 2}, {5, 7, 1}, {31, 30, 2}, {31, 31, 0}} {
			y, x, c := p[0], p[1], p[2]
			got := in.Float32[i*3072+(y*32+x)*3+c]
			if want := float32(rec[1+c*1024+y*32+x]) / 255; got != want {
				t.Fatalf("%s: example %d pixel (y=%d, x=%d, c=%d) = %g, want %g", ds.Name(), i, y, x, c, got, want)
			}
		}
	}
}

func TestLoadCIFAR10(t *testing.T) {
	dir := t.TempDir()
	trainRecs, testRecs := writeCIFARDir(t, dir, [6]int{2, 1, 1, 3, 1, 2})
	for _, layout := range []data.Layout{data.LayoutFlat, data.LayoutNHWC} {
		train, test, err := data.LoadCIFAR10(dir, layout)
		if err != nil {
			t.Fatal(err)
		}
		checkCIFAR(t, train, trainRecs, layout)
		checkCIFAR(t, test, testRecs, layout)
		if train.Name() != "cifar10-train" || test.Name() != "cifar10-test" {
			t.Fatalf("names %q, %q", train.Name(), test.Name())
		}
	}
	// The environment variable, and the folder the archive unpacks to.
	parent := t.TempDir()
	sub := filepath.Join(parent, "cifar-10-batches-bin")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	trainRecs, testRecs = writeCIFARDir(t, sub, [6]int{1, 1, 1, 1, 1, 1})
	t.Setenv(data.EnvCIFAR10Dir, parent)
	train, test, err := data.LoadCIFAR10("", data.LayoutNHWC)
	if err != nil {
		t.Fatal(err)
	}
	checkCIFAR(t, train, trainRecs, data.LayoutNHWC)
	checkCIFAR(t, test, testRecs, data.LayoutNHWC)
}

func TestLoadCIFAR10Errors(t *testing.T) {
	t.Setenv(data.EnvCIFAR10Dir, "")
	_, _, err := data.LoadCIFAR10("", data.LayoutFlat)
	wantErr(t, err, "data.LoadCIFAR10: no folder", "GOPTLAB_CIFAR10_DIR", "cifar-10-binary.tar.gz")

	dir := t.TempDir()
	writeCIFARDir(t, dir, [6]int{1, 1, 1, 1, 1, 1})
	_, _, err = data.LoadCIFAR10(dir, data.Layout(7))
	wantErr(t, err, "layout Layout(7)")

	if err := os.Truncate(filepath.Join(dir, "data_batch_4.bin"), 3000); err != nil {
		t.Fatal(err)
	}
	_, _, err = data.LoadCIFAR10(dir, data.LayoutFlat)
	wantErr(t, err, "data.LoadCIFAR10: "+filepath.Join(dir, "data_batch_4.bin")+": 3000 bytes is not")

	if err := os.Remove(filepath.Join(dir, "data_batch_4.bin")); err != nil {
		t.Fatal(err)
	}
	t.Setenv(data.EnvCIFAR10Dir, dir)
	_, _, err = data.LoadCIFAR10("", data.LayoutFlat)
	wantErr(t, err, "data_batch_4.bin not found in "+dir, "folder from $GOPTLAB_CIFAR10_DIR", "cifar-10-binary.tar.gz")
}

func FuzzReadCIFAR(f *testing.F) {
	rng := rand.New(rand.NewPCG(5, 6))
	f.Add(cifarRecords(rng, 4))
	f.Add(cifarRecords(rng, 9, 0))
	f.Add(gzipBytes(f, cifarRecords(rng, 1)))
	f.Add(make([]byte, 3074))
	f.Add([]byte{10})
	f.Fuzz(func(t *testing.T, in []byte) {
		b, err := data.ReadCIFAR(bytes.NewReader(in), "fuzz.bin")
		if err != nil {
			if !strings.Contains(err.Error(), "fuzz.bin") {
				t.Fatalf("error %q does not name the file", err)
			}
			return
		}
		if b.Len() < 1 || len(b.Pixels) != 3072*b.Len() {
			t.Fatalf("%d labels and %d pixel bytes", b.Len(), len(b.Pixels))
		}
		for i, l := range b.Labels {
			if l > 9 {
				t.Fatalf("label %d of record %d accepted", l, i)
			}
			if len(in) >= 2 && in[0] == 0x1f && in[1] == 0x8b {
				continue
			}
			if in[i*3073] != l || !bytes.Equal(in[i*3073+1:(i+1)*3073], b.Pixels[i*3072:(i+1)*3072]) {
				t.Fatalf("record %d differs from the input", i)
			}
		}
	})
}
