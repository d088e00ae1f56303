package data_test

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/goptlab/goptlab/mlx/data"
)

// encodeIDX writes an IDX file: the magic number (type, len(dims)), dims, then data.
func encodeIDX(typ data.IDXType, dims []int, payload []byte) []byte {
	b := []byte{0, 0, byte(typ), byte(len(dims))}
	for _, d := range dims {
		b = binary.BigEndian.AppendUint32(b, uint32(d))
	}
	return append(b, payload...)
}

func gzipBytes(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	z, err := gzip.NewWriterLevel(&buf, gzip.BestSpeed) // fast on MNIST-sized files
	if err != nil {
		t.Fatal(err)
	}
	if _, err := z.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := z.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func wantErr(t *testing.T, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one mentioning %q", parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Fatalf("error %q does not mention %q", err, p)
		}
	}
}

func TestReadIDXRawAndGzip(t *testing.T) {
	pixels := []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 255}
	int32s := binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, 7), 0xFFFFFFFE)
	for _, tc := range []struct {
		typ     data.IDXType
		dims    []int
		payload []byte
	}{
		{data.IDXUint8, []int{3, 2, 2}, pixels},
		{data.IDXUint8, []int{12}, pixels},
		{data.IDXInt32, []int{2}, int32s},
		{data.IDXFloat64, []int{1, 1}, int32s},
		{data.IDXInt16, []int{0, 5}, nil},
	} {
		file := encodeIDX(tc.typ, tc.dims, tc.payload)
		for _, gz := range []bool{false, true} {
			in := file
			if gz {
				in = gzipBytes(t, file)
			}
			x, err := data.ReadIDX(bytes.NewReader(in), "f.idx")
			if err != nil {
				t.Fatalf("%s %v gzip=%v: %v", tc.typ, tc.dims, gz, err)
			}
			if x.Type != tc.typ || !slices.Equal(x.Dims, tc.dims) || !bytes.Equal(x.Data, tc.payload) {
				t.Fatalf("gzip=%v: got %s %v %v, want %s %v %v", gz, x.Type, x.Dims, x.Data, tc.typ, tc.dims, tc.payload)
			}
		}
	}
}

func TestReadIDXRejectsBadFiles(t *testing.T) {
	good := encodeIDX(data.IDXUint8, []int{2, 3}, []byte{1, 2, 3, 4, 5, 6})
	gz := gzipBytes(t, good)
	badCRC := slices.Clone(gz)
	badCRC[len(badCRC)-8] ^= 0xFF // the CRC-32 in the gzip trailer
	for _, tc := range []struct {
		name string
		in   []byte
		want []string
	}{
		{"empty", nil, []string{"too short for an IDX magic number"}},
		{"short", []byte{0, 0, 8}, []string{"too short"}},
		{"not idx", append([]byte{0x12, 0x34}, good[2:]...), []string{"magic number 0x12340802", "not an IDX file"}},
		{"unknown type", encodeIDX(0x07, []int{1}, []byte{1}), []string{"unknown IDX element type 0x07"}},
		{"no dims", encodeIDX(data.IDXUint8, nil, []byte{1}), []string{"0 dimensions out of range"}},
		{"too many dims", encodeIDX(data.IDXUint8, make([]int, 17), nil), []string{"17 dimensions out of range"}},
		{"truncated header", good[:9], []string{"truncated header", "2 dimensions need 12 header bytes, the file has 9"}},
		{"truncated data", good[:len(good)-1], []string{"truncated", "need 6 bytes of data, the file has 5"}},
		{"trailing", append(slices.Clone(good), 0), []string{"1 trailing bytes"}},
		{"huge claim", encodeIDX(data.IDXUint8, []int{1 << 20, 1 << 20}, []byte{1}), []string{"claim more than", "too large"}},
		{"huge float64", encodeIDX(data.IDXFloat64, []int{0xFFFFFFFF}, nil), []string{"too large"}},
		{"wrong magic type", encodeIDX(data.IDXInt32, []int{2, 3}, []byte{1, 2, 3, 4, 5, 6}), []string{"need 24 bytes of data"}},
		{"gzip header", append([]byte{0x1f, 0x8b}, good...), []string{"bad gzip header"}},
		{"gzip truncated", gz[:len(gz)-10], []string{"bad gzip data (truncated or corrupted)"}},
		{"gzip checksum", badCRC, []string{"bad gzip data", "checksum"}},
	} {
		_, err := data.ReadIDX(bytes.NewReader(tc.in), "damaged.idx")
		wantErr(t, err, append(tc.want, "data.ReadIDX: damaged.idx: ")...)
	}
}

// TestReadIDXAllocatesForTheDataOnly: a header that claims 960 MB in front of a few bytes
// must not make the reader allocate anything near that.
func TestReadIDXAllocatesForTheDataOnly(t *testing.T) {
	crafted := encodeIDX(data.IDXUint8, []int{60000 * 20, 28, 28}, make([]byte, 100))
	for _, in := range [][]byte{crafted, gzipBytes(t, crafted)} {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, err := data.ReadIDX(bytes.NewReader(in), "crafted.idx")
		runtime.ReadMemStats(&after)
		wantErr(t, err, "truncated")
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 4<<20 {
			t.Fatalf("reading a %d-byte file allocated %d bytes", len(in), alloc)
		}
	}
}

func TestReadIDXFileNamesTheFile(t *testing.T) {
	path := t.TempDir() + "/labels.idx"
	_, err := data.ReadIDXFile(path)
	wantErr(t, err, "data.ReadIDXFile", path, "no such file")
}

func FuzzReadIDX(f *testing.F) {
	f.Add(encodeIDX(data.IDXUint8, []int{2, 2, 2}, []byte{0, 1, 2, 3, 4, 5, 6, 255}))
	f.Add(encodeIDX(data.IDXUint8, []int{3}, []byte{7, 2, 1}))
	f.Add(encodeIDX(data.IDXUint8, []int{2}, []byte{7, 2, 1})) // one trailing byte
	f.Add(encodeIDX(data.IDXInt16, []int{1, 2}, []byte{1, 2, 3, 4}))
	f.Add(encodeIDX(data.IDXFloat64, []int{0xFFFF, 0xFFFF}, nil))
	f.Add(gzipBytes(f, encodeIDX(data.IDXUint8, []int{2, 2}, []byte{9, 8, 7, 6})))
	f.Add([]byte{0x1f, 0x8b, 8, 0})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, in []byte) {
		x, err := data.ReadIDX(bytes.NewReader(in), "fuzz.idx")
		if err != nil {
			if !strings.Contains(err.Error(), "fuzz.idx") {
				t.Fatalf("error %q does not name the file", err)
			}
			return
		}
		n := x.Type.Size()
		for _, d := range x.Dims {
			n *= d
		}
		if n != len(x.Data) {
			t.Fatalf("dims %v of %s hold %d bytes, Data has %d", x.Dims, x.Type, n, len(x.Data))
		}
		// What was read is the file (once decompressed): header and data, nothing dropped.
		if enc := encodeIDX(x.Type, x.Dims, x.Data); len(in) < 2 || in[0] != 0x1f || in[1] != 0x8b {
			if !bytes.Equal(enc, in) {
				t.Fatalf("re-encoded file differs from the input")
			}
		}
	})
}
