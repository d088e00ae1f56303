package data

import (
	"bufio"
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"io"
	"os"
)

// IDX is the content of an IDX file, the format of MNIST and Fashion-MNIST (LeCun et
// al.): a magic number, the dimensions, then the values, all big-endian. The magic
// number's first two bytes are zero, the third is the element type ([IDXType]) and the
// fourth the number of dimensions; each dimension follows as a 32-bit unsigned integer,
// and then prod(Dims) elements in row-major order. MNIST images are 0x00000803 (uint8,
// three dimensions [N, 28, 28]), labels 0x00000801 (uint8, one dimension [N]).
type IDX struct {
	// Type is the element type.
	Type IDXType
	// Dims are the dimensions, outermost first.
	Dims []int
	// Data holds the prod(Dims) elements, Type.Size() bytes each, big-endian, as in the file.
	Data []byte
}

// IDXType is the element type byte of an IDX magic number.
type IDXType byte

// The element types of the IDX format.
const (
	IDXUint8   IDXType = 0x08
	IDXInt8    IDXType = 0x09
	IDXInt16   IDXType = 0x0B
	IDXInt32   IDXType = 0x0C
	IDXFloat32 IDXType = 0x0D
	IDXFloat64 IDXType = 0x0E
)

// Size is the size in bytes of one element, or 0 for a byte that is no IDX type.
func (t IDXType) Size() int {
	switch t {
	case IDXUint8, IDXInt8:
		return 1
	case IDXInt16:
		return 2
	case IDXInt32, IDXFloat32:
		return 4
	case IDXFloat64:
		return 8
	}
	return 0
}

// String names the type, e.g. "uint8".
func (t IDXType) String() string {
	switch t {
	case IDXUint8:
		return "uint8"
	case IDXInt8:
		return "int8"
	case IDXInt16:
		return "int16"
	case IDXInt32:
		return "int32"
	case IDXFloat32:
		return "float32"
	case IDXFloat64:
		return "float64"
	}
	return fmt.Sprintf("IDXType(0x%02x)", byte(t))
}

// MaxDecodedBytes bounds what the readers of this package accept from one file, after
// decompression: a larger file (or a header that claims more data) is an error, so a
// damaged or crafted file cannot make them allocate more than that. The largest
// supported files, MNIST's training images, are 47 MB.
const MaxDecodedBytes = 1 << 30

// maxIDXDims bounds the number of dimensions of an IDX file (the format allows 255).
const maxIDXDims = 16

// ReadIDX reads an IDX file from r, raw or gzip-compressed (told apart by the gzip
// magic bytes). name names the file in errors. The header is checked against the data
// that is actually there: a truncated file, trailing bytes, an unknown element type and
// sizes beyond [MaxDecodedBytes] are errors, and nothing is allocated from the header's
// claims alone.
func ReadIDX(r io.Reader, name string) (*IDX, error) {
	x, _, err := readIDX(r, name)
	if err != nil {
		return nil, fmt.Errorf("data.ReadIDX: %w", err)
	}
	return x, nil
}

// ReadIDXFile reads the IDX file at path, raw or gzip-compressed: see [ReadIDX].
func ReadIDXFile(path string) (*IDX, error) {
	x, _, err := readIDXFile(path)
	if err != nil {
		return nil, fmt.Errorf("data.ReadIDXFile: %w", err)
	}
	return x, nil
}

// readIDXFile is ReadIDXFile that also returns the decoded bytes (for checksums).
func readIDXFile(path string) (*IDX, []byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	return readIDX(f, path)
}

// readIDX is ReadIDX that also returns the whole decoded file (header and data).
func readIDX(r io.Reader, name string) (*IDX, []byte, error) {
	b, err := readMaybeGzip(r, name)
	if err != nil {
		return nil, nil, err
	}
	x, err := parseIDX(b, name)
	if err != nil {
		return nil, nil, err
	}
	return x, b, nil
}

// readMaybeGzip returns the content of r, decompressed if it starts with the gzip magic
// bytes, up to MaxDecodedBytes. Memory grows with the data actually read, never with
// what a header claims. A gzip stream must be complete: its checksum and length are
// verified at its end.
func readMaybeGzip(r io.Reader, name string) ([]byte, error) {
	br := bufio.NewReader(r)
	src := io.Reader(br)
	what := "read"
	if head, _ := br.Peek(2); len(head) == 2 && head[0] == 0x1f && head[1] == 0x8b {
		z, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("%s: bad gzip header: %w", name, err)
		}
		defer z.Close()
		src = z
		what = "bad gzip data (truncated or corrupted)"
	}
	b, err := io.ReadAll(io.LimitReader(src, MaxDecodedBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %s: %w", name, what, err)
	}
	if len(b) > MaxDecodedBytes {
		return nil, fmt.Errorf("%s: more than %d bytes (decompressed): too large for this reader", name, MaxDecodedBytes)
	}
	return b, nil
}

// parseIDX checks and splits a decoded IDX file; Data aliases b.
func parseIDX(b []byte, name string) (*IDX, error) {
	if len(b) < 4 {
		return nil, fmt.Errorf("%s: %d bytes: too short for an IDX magic number (4 bytes)", name, len(b))
	}
	magic := binary.BigEndian.Uint32(b)
	if b[0] != 0 || b[1] != 0 {
		return nil, fmt.Errorf("%s: magic number 0x%08x: not an IDX file (an IDX magic number starts with two zero bytes, e.g. 0x00000803 for MNIST images)", name, magic)
	}
	t, nd := IDXType(b[2]), int(b[3])
	size := t.Size()
	if size == 0 {
		return nil, fmt.Errorf("%s: magic number 0x%08x: unknown IDX element type 0x%02x (known: 0x08 uint8, 0x09 int8, 0x0b int16, 0x0c int32, 0x0d float32, 0x0e float64)", name, magic, b[2])
	}
	if nd < 1 || nd > maxIDXDims {
		return nil, fmt.Errorf("%s: magic number 0x%08x: %d dimensions out of range: must be in [1, %d]", name, magic, nd, maxIDXDims)
	}
	header := 4 + 4*nd
	if len(b) < header {
		return nil, fmt.Errorf("%s: truncated header: %d dimensions need %d header bytes, the file has %d", name, nd, header, len(b))
	}
	raw := make([]int64, nd)
	for i := range raw {
		raw[i] = int64(binary.BigEndian.Uint32(b[4+4*i:]))
	}
	total := int64(size)
	for _, d := range raw {
		total *= d // both factors are < 2^32, so no overflow
		if total > MaxDecodedBytes {
			return nil, fmt.Errorf("%s: dimensions %v of %s claim more than %d bytes of data: too large", name, raw, t, MaxDecodedBytes)
		}
	}
	dims := make([]int, nd)
	for i, d := range raw {
		dims[i] = int(d)
	}
	data := b[header:]
	switch {
	case int64(len(data)) < total:
		return nil, fmt.Errorf("%s: truncated: dimensions %v of %s need %d bytes of data, the file has %d", name, dims, t, total, len(data))
	case int64(len(data)) > total:
		return nil, fmt.Errorf("%s: %d trailing bytes after the %d bytes of data of dimensions %v of %s", name, int64(len(data))-total, total, dims, t)
	}
	return &IDX{Type: t, Dims: dims, Data: data[:total:total]}, nil
}
