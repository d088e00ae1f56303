package train

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"io/fs"
	"math"
	"math/bits"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/goptlab/goptlab/mlx/data"
	"github.com/goptlab/goptlab/mlx/history"
	"github.com/goptlab/goptlab/mlx/internal/atomicfile"
)

// CheckpointFile is the name of the checkpoint file inside Config.CheckpointDir (format:
// see the package documentation).
const CheckpointFile = "checkpoint.ckpt"

const (
	// legacyCheckpointFile is the gob checkpoint of earlier versions, which this one refuses to read.
	legacyCheckpointFile = "checkpoint.gob"
	checkpointMagic      = "GOPTCKPT"
	// checkpointVersion is the version written; versions 1 (without the dataset size and
	// the stepper's fingerprint) and 2 are read.
	checkpointVersion = 2
	// fixedPrefixBytes is the magic, the version and the header length; two CRCs follow the header and the data.
	fixedPrefixBytes = len(checkpointMagic) + 4 + 4
	crcBytes         = 4
	maxRank          = 64
	maxPathBytes     = 4096
	maxNameBytes     = 1 << 16
	// maxFingerprintLineBytes bounds one line of a stepper's fingerprint.
	maxFingerprintLineBytes = 1 << 16
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// checkpoint is the header of a checkpoint file; the Store's variables follow it.
type checkpoint struct {
	// Version is the format version of the file read (not written: files are written in
	// checkpointVersion).
	Version   int
	Step      int
	Seed      int64
	BatchSize int
	Stepper   string
	Dataset   string
	// DatasetSize is the number of examples of the dataset (version >= 2; -1: unknown).
	DatasetSize int
	// Fingerprint describes the stepper's configuration, as sorted "path=value" lines
	// (version >= 2; nil in version 1 files: not compared).
	Fingerprint []string
	Records     []history.Record
}

// maxListedChanges is how many hyperparameter changes a refused resume lists.
const maxListedChanges = 8

// compatible checks that a checkpoint belongs to the run described by cfg, with stepper
// (whose configuration has the given fingerprint) on the dataset ds.
func (c checkpoint) compatible(stepper Stepper, fingerprint []string, ds *data.Dataset, cfg Config) error {
	if c.Seed != cfg.Seed || c.BatchSize != cfg.BatchSize || c.Stepper != stepper.Name() {
		return fmt.Errorf("the checkpoint in %s is from another run (seed %d, batch size %d, stepper %q), "+
			"not this one (seed %d, batch size %d, stepper %q): use another CheckpointDir or delete it",
			cfg.CheckpointDir, c.Seed, c.BatchSize, c.Stepper, cfg.Seed, cfg.BatchSize, stepper.Name())
	}
	if cfg.ResumeAnyway {
		return nil
	}
	var changes []string
	if c.Dataset != ds.Name() {
		changes = append(changes, fmt.Sprintf("dataset: %q in the checkpoint, %q now", c.Dataset, ds.Name()))
	}
	if c.DatasetSize >= 0 && c.DatasetSize != ds.Len() {
		changes = append(changes, fmt.Sprintf("dataset size: %d examples in the checkpoint, %d now", c.DatasetSize, ds.Len()))
	}
	if c.Fingerprint != nil {
		for _, d := range fingerprintDiff(c.Fingerprint, fingerprint, maxListedChanges) {
			changes = append(changes, "stepper setting "+d)
		}
	}
	if len(changes) > 0 {
		return fmt.Errorf("the checkpoint in %s was written with other settings than this run's (%s): "+
			"use another CheckpointDir, or set Config.ResumeAnyway to resume it with this run's settings",
			cfg.CheckpointDir, strings.Join(changes, "; "))
	}
	return nil
}

// savedVariable is one variable of a checkpoint file.
type savedVariable struct {
	Path      string
	Trainable bool
	Value     *tensors.Tensor
}

// checkpointWriteHook, if set (tests only), wraps the writer of the temporary file, to
// inject write errors or crashes in the middle of a checkpoint.
var checkpointWriteHook func(io.Writer) io.Writer

// supportedDType reports whether a checkpoint can hold variables of dtype dt (every
// dtype with whole bytes per value).
func supportedDType(dt dtypes.DType) bool {
	return dt >= dtypes.Bool && dt <= dtypes.Complex128
}

// swapUnit is the size of the values whose bytes are reordered between little-endian
// (the file) and big-endian hosts.
func swapUnit(dt dtypes.DType) int {
	if dt.IsComplex() {
		return dt.Size() / 2
	}
	return dt.Size()
}

// hostLittleEndian is whether tensors' memory is little-endian, as the file.
var hostLittleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

// swapBytes reverses the byte order of each unit-sized value of b, in place.
func swapBytes(b []byte, unit int) {
	if unit <= 1 {
		return
	}
	for i := 0; i+unit <= len(b); i += unit {
		slices.Reverse(b[i : i+unit])
	}
}

// headerWriter encodes the header of a checkpoint.
type headerWriter struct{ bytes.Buffer }

func (w *headerWriter) uvarint(x uint64) { w.Write(binary.AppendUvarint(nil, x)) }
func (w *headerWriter) varint(x int64)   { w.Write(binary.AppendVarint(nil, x)) }
func (w *headerWriter) f64(x float64) {
	w.Write(binary.LittleEndian.AppendUint64(nil, math.Float64bits(x)))
}
func (w *headerWriter) str(s string) { w.uvarint(uint64(len(s))); w.WriteString(s) }

// encodeHeader encodes the checkpoint's metadata and the description of its variables.
// Files are written in checkpointVersion; tests write version 1 to check that it still loads.
func encodeHeader(ck checkpoint, vars []savedVariable, version int) []byte {
	var w headerWriter
	w.varint(int64(ck.Step))
	w.varint(ck.Seed)
	w.varint(int64(ck.BatchSize))
	w.str(ck.Stepper)
	w.str(ck.Dataset)
	if version >= 2 {
		w.varint(int64(ck.DatasetSize))
		w.uvarint(uint64(len(ck.Fingerprint)))
		for _, l := range ck.Fingerprint {
			w.str(l)
		}
	}
	w.uvarint(uint64(len(ck.Records)))
	for _, r := range ck.Records {
		w.varint(int64(r.Step))
		w.f64(r.Time)
		w.varint(r.Evals)
		w.f64(r.Loss)
		keys := make([]string, 0, len(r.Metrics))
		for k := range r.Metrics {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		w.uvarint(uint64(len(keys)))
		for _, k := range keys {
			w.str(k)
			w.f64(r.Metrics[k])
		}
	}
	w.uvarint(uint64(len(vars)))
	for _, v := range vars {
		w.str(v.Path)
		if v.Trainable {
			w.WriteByte(1)
		} else {
			w.WriteByte(0)
		}
		s := v.Value.Shape()
		w.uvarint(uint64(s.DType))
		w.uvarint(uint64(s.Rank()))
		for _, d := range s.Dimensions {
			w.uvarint(uint64(d))
		}
	}
	return w.Bytes()
}

// headerReader decodes a header; every count and length is checked against the bytes
// left before anything is allocated for it. The first error sticks.
type headerReader struct {
	b   []byte
	err error
}

func (r *headerReader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf(format, args...)
	}
}

func (r *headerReader) uvarint(what string) uint64 { return readVarint(r, what, binary.Uvarint) }
func (r *headerReader) varint(what string) int64   { return readVarint(r, what, binary.Varint) }

// readVarint decodes the next varint of r with decode (binary.Uvarint or binary.Varint).
func readVarint[T uint64 | int64](r *headerReader, what string, decode func([]byte) (T, int)) T {
	if r.err != nil {
		return 0
	}
	x, n := decode(r.b)
	if n <= 0 {
		r.fail("%s: bad or truncated varint", what)
		return 0
	}
	r.b = r.b[n:]
	return x
}

// int reads a varint that must fit an int and lie in [lo, hi].
func (r *headerReader) int(what string, lo, hi int64) int {
	x := r.varint(what)
	if r.err == nil && (x < lo || x > hi) {
		r.fail("%s=%d out of range [%d, %d]", what, x, lo, hi)
		return 0
	}
	return int(x)
}

func (r *headerReader) f64(what string) float64 {
	if r.err != nil {
		return 0
	}
	if len(r.b) < 8 {
		r.fail("%s: truncated", what)
		return 0
	}
	x := math.Float64frombits(binary.LittleEndian.Uint64(r.b))
	r.b = r.b[8:]
	return x
}

func (r *headerReader) byte(what string) byte {
	if r.err != nil {
		return 0
	}
	if len(r.b) < 1 {
		r.fail("%s: truncated", what)
		return 0
	}
	x := r.b[0]
	r.b = r.b[1:]
	return x
}

// count reads the number of items of a list whose items take at least minBytes each.
func (r *headerReader) count(what string, minBytes int) int {
	n := r.uvarint(what)
	if r.err == nil && n > uint64(len(r.b)/minBytes) {
		r.fail("%s=%d is more than the %d bytes left can hold", what, n, len(r.b))
		return 0
	}
	return int(n)
}

func (r *headerReader) str(what string, maxLen int) string {
	n := r.uvarint(what + " length")
	if r.err != nil {
		return ""
	}
	if n > uint64(len(r.b)) || n > uint64(maxLen) {
		r.fail("%s: length %d is more than the %d bytes left (or the limit %d)", what, n, len(r.b), maxLen)
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	if !utf8.ValidString(s) {
		r.fail("%s is not valid UTF-8", what)
	}
	return s
}

// varHeader describes one variable of a checkpoint file before its data is read.
type varHeader struct {
	path      string
	trainable bool
	shape     shapes.Shape
	bytes     int64
}

// decodeHeader decodes a header of the given format version whose variables' data must
// take exactly dataBytes.
func decodeHeader(b []byte, dataBytes int64, version int) (checkpoint, []varHeader, error) {
	r := &headerReader{b: b}
	ck := checkpoint{Version: version, DatasetSize: -1}
	ck.Step = r.int("step", 0, math.MaxInt32)
	ck.Seed = r.varint("seed")
	ck.BatchSize = r.int("batch size", 0, math.MaxInt32)
	ck.Stepper = r.str("stepper name", maxNameBytes)
	ck.Dataset = r.str("dataset name", maxNameBytes)
	if version >= 2 {
		ck.DatasetSize = r.int("dataset size", 0, math.MaxInt)
		// A line takes at least 1 byte (its length).
		if n := r.count("number of fingerprint lines", 1); n > 0 {
			ck.Fingerprint = make([]string, n)
			for i := range ck.Fingerprint {
				ck.Fingerprint[i] = r.str("fingerprint line", maxFingerprintLineBytes)
			}
		} else {
			ck.Fingerprint = []string{}
		}
	}
	// A record takes at least 1+8+1+8+1 bytes.
	if n := r.count("number of records", 19); n > 0 {
		ck.Records = make([]history.Record, n)
	}
	for i := range ck.Records {
		rec := &ck.Records[i]
		rec.Step = r.int("record step", 0, math.MaxInt32)
		rec.Time = r.f64("record time")
		rec.Evals = r.varint("record evaluations")
		rec.Loss = r.f64("record loss")
		// A metric takes at least 1+8 bytes.
		if m := r.count("number of metrics", 9); m > 0 {
			rec.Metrics = make(map[string]float64, m)
			for range m {
				k := r.str("metric name", maxNameBytes)
				rec.Metrics[k] = r.f64("metric value")
			}
		}
		if r.err != nil {
			return ck, nil, fmt.Errorf("record %d: %w", i, r.err)
		}
	}
	// A variable takes at least 2 (path) + 1 + 1 + 1 bytes.
	n := r.count("number of variables", 5)
	vars := make([]varHeader, 0, n)
	seen := make(map[string]bool, n)
	left := dataBytes
	for i := range n {
		v := varHeader{path: r.str("variable path", maxPathBytes)}
		v.trainable = r.byte("trainable flag") == 1
		dt := dtypes.DType(r.uvarint("dtype"))
		rank := r.count("rank", 1)
		if r.err != nil {
			return ck, nil, fmt.Errorf("variable %d: %w", i, r.err)
		}
		switch {
		case !strings.HasPrefix(v.path, "/") || len(v.path) < 2:
			return ck, nil, fmt.Errorf("variable %d: path %q must start with / and name a variable", i, v.path)
		case seen[v.path]:
			return ck, nil, fmt.Errorf("variable %d: path %q appears twice", i, v.path)
		case !supportedDType(dt):
			return ck, nil, fmt.Errorf("variable %q: unsupported dtype %d", v.path, int32(dt))
		case rank > maxRank:
			return ck, nil, fmt.Errorf("variable %q: rank %d is more than %d", v.path, rank, maxRank)
		}
		seen[v.path] = true
		dims := make([]int, rank)
		size := uint64(dt.Size())
		for a := range dims {
			d := r.uvarint("dimension")
			if r.err != nil {
				return ck, nil, fmt.Errorf("variable %q: %w", v.path, r.err)
			}
			if d > math.MaxInt32 {
				return ck, nil, fmt.Errorf("variable %q: dimension %d of axis %d is too large", v.path, d, a)
			}
			dims[a] = int(d)
			hi, lo := bits.Mul64(size, d)
			if hi != 0 || lo > uint64(left) {
				return ck, nil, fmt.Errorf("variable %q: shape %v of dtype %s needs more than the %d bytes of data left",
					v.path, dims[:a+1], dt, left)
			}
			size = lo
		}
		if size > uint64(left) {
			return ck, nil, fmt.Errorf("variable %q: needs %d bytes, only %d bytes of data left", v.path, size, left)
		}
		v.shape = shapes.Make(dt, dims...)
		v.bytes = int64(size)
		left -= v.bytes
		vars = append(vars, v)
	}
	if r.err != nil {
		return ck, nil, r.err
	}
	if len(r.b) != 0 {
		return ck, nil, fmt.Errorf("%d unexpected bytes at the end of the header", len(r.b))
	}
	if left != 0 {
		return ck, nil, fmt.Errorf("the variables take %d bytes, the file holds %d bytes of data", dataBytes-left, dataBytes)
	}
	return ck, vars, nil
}

// encodeCheckpoint writes a checkpoint (format: see the package documentation) to w.
func encodeCheckpoint(w io.Writer, ck checkpoint, vars []savedVariable) error {
	return encodeCheckpointVersion(w, ck, vars, checkpointVersion)
}

// encodeCheckpointVersion writes a checkpoint in the given format version.
func encodeCheckpointVersion(w io.Writer, ck checkpoint, vars []savedVariable, version int) error {
	for _, v := range vars {
		if !supportedDType(v.Value.DType()) {
			return fmt.Errorf("variable %q: dtype %s cannot be saved", v.Path, v.Value.DType())
		}
	}
	header := encodeHeader(ck, vars, version)
	if len(header) > math.MaxInt32 {
		return fmt.Errorf("the header takes %d bytes, more than the format's limit", len(header))
	}
	bw := bufio.NewWriterSize(w, 1<<16)
	prefix := append([]byte(checkpointMagic), binary.LittleEndian.AppendUint32(nil, uint32(version))...)
	prefix = binary.LittleEndian.AppendUint32(prefix, uint32(len(header)))
	_, _ = bw.Write(prefix)
	_, _ = bw.Write(header)
	_, _ = bw.Write(binary.LittleEndian.AppendUint32(nil, crc32.Checksum(header, crcTable)))
	crc := crc32.New(crcTable)
	out := io.MultiWriter(bw, crc)
	for _, v := range vars {
		var werr error
		err := v.Value.ConstBytes(func(data []byte) {
			if !hostLittleEndian {
				data = slices.Clone(data)
				swapBytes(data, swapUnit(v.Value.DType()))
			}
			_, werr = out.Write(data)
		})
		if err == nil {
			err = werr
		}
		if err != nil {
			return fmt.Errorf("variable %q: %w", v.Path, err)
		}
	}
	_, _ = bw.Write(binary.LittleEndian.AppendUint32(nil, crc.Sum32()))
	return bw.Flush()
}

// decodeCheckpoint reads a checkpoint of size bytes from r. It checks every count, shape
// and dtype against the size before allocating, and both checksums, so malformed input
// gives an error, and allocations stay within a small multiple of size.
func decodeCheckpoint(r io.Reader, size int64) (checkpoint, []savedVariable, error) {
	var ck checkpoint
	if size < int64(fixedPrefixBytes+2*crcBytes) {
		return ck, nil, fmt.Errorf("%d bytes is too short for a checkpoint", size)
	}
	prefix := make([]byte, fixedPrefixBytes)
	if _, err := io.ReadFull(r, prefix); err != nil {
		return ck, nil, fmt.Errorf("reading the file's prefix: %w", err)
	}
	if string(prefix[:len(checkpointMagic)]) != checkpointMagic {
		return ck, nil, errors.New("not a checkpoint file (bad magic number)")
	}
	version := binary.LittleEndian.Uint32(prefix[len(checkpointMagic):])
	if version < 1 || version > checkpointVersion {
		return ck, nil, fmt.Errorf("checkpoint format version %d: this version of mlx/train reads versions 1 to %d", version, checkpointVersion)
	}
	headerLen := int64(binary.LittleEndian.Uint32(prefix[len(checkpointMagic)+4:]))
	dataBytes := size - int64(fixedPrefixBytes) - headerLen - 2*crcBytes
	if dataBytes < 0 {
		return ck, nil, fmt.Errorf("header length %d is more than the file's %d bytes allow", headerLen, size)
	}
	header := make([]byte, headerLen+crcBytes)
	if _, err := io.ReadFull(r, header); err != nil {
		return ck, nil, fmt.Errorf("reading the header: %w", err)
	}
	if got, want := crc32.Checksum(header[:headerLen], crcTable), binary.LittleEndian.Uint32(header[headerLen:]); got != want {
		return ck, nil, fmt.Errorf("header checksum mismatch (%#08x, want %#08x): the file is corrupt", got, want)
	}
	ck, headers, err := decodeHeader(header[:headerLen], dataBytes, int(version))
	if err != nil {
		return ck, nil, fmt.Errorf("header: %w", err)
	}
	crc := crc32.New(crcTable)
	vars := make([]savedVariable, len(headers))
	for i, h := range headers {
		t := tensors.FromShape(h.shape)
		var rerr error
		err := t.MutableBytes(func(data []byte) {
			if int64(len(data)) != h.bytes {
				rerr = fmt.Errorf("tensor of shape %s holds %d bytes, want %d", h.shape, len(data), h.bytes)
				return
			}
			if _, rerr = io.ReadFull(r, data); rerr != nil {
				return
			}
			_, _ = crc.Write(data)
			if !hostLittleEndian {
				swapBytes(data, swapUnit(h.shape.DType))
			}
		})
		if err == nil {
			err = rerr
		}
		if err != nil {
			return ck, nil, fmt.Errorf("reading variable %q: %w", h.path, err)
		}
		vars[i] = savedVariable{Path: h.path, Trainable: h.trainable, Value: t}
	}
	return ck, vars, checkCRC(r, crc, "data")
}

// checkCRC reads the final checksum from r and compares it with h.
func checkCRC(r io.Reader, h hash.Hash32, what string) error {
	var b [crcBytes]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return fmt.Errorf("reading the %s checksum: %w", what, err)
	}
	if got, want := h.Sum32(), binary.LittleEndian.Uint32(b[:]); got != want {
		return fmt.Errorf("%s checksum mismatch (%#08x, want %#08x): the file is corrupt", what, got, want)
	}
	return nil
}

// tempPattern is the pattern of the temporary files of saveCheckpoint (for os.CreateTemp and filepath.Glob).
const tempPattern = CheckpointFile + ".*.tmp"

// saveCheckpoint writes the header and every Store variable with a value to
// dir/CheckpointFile atomically: it writes a temporary file in dir, syncs it, renames it
// over the previous checkpoint and syncs dir. A failure (or a crash) at any point leaves the
// previous checkpoint intact.
func saveCheckpoint(dir string, store *model.Store, ck checkpoint) (err error) {
	defer func() {
		if err != nil {
			err = fmt.Errorf("saving the checkpoint of step %d to %s: %w", ck.Step, dir, err)
		}
	}()
	var vars []savedVariable
	for v := range store.IterVariables() {
		if !v.HasValue() {
			continue
		}
		value, verr := v.Value()
		if verr != nil {
			return fmt.Errorf("variable %q: %w", v.Path(), verr)
		}
		vars = append(vars, savedVariable{Path: v.Path(), Trainable: v.Trainable, Value: value})
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(dir, CheckpointFile), tempPattern, 0o600, func(w io.Writer) error {
		if checkpointWriteHook != nil {
			w = checkpointWriteHook(w)
		}
		return encodeCheckpoint(w, ck, vars)
	})
}

// removeStaleTemps deletes the temporary files that a crash during saveCheckpoint left in
// dir. Only the holder of the directory's lock may call it (see lockDir).
func removeStaleTemps(dir string) {
	stale, _ := filepath.Glob(filepath.Join(dir, tempPattern))
	for _, p := range stale {
		_ = os.Remove(p)
	}
}

// readCheckpoint reads and validates the checkpoint file at path.
func readCheckpoint(path string) (checkpoint, []savedVariable, error) {
	f, err := os.Open(path)
	if err != nil {
		return checkpoint{}, nil, err
	}
	defer func() { _ = f.Close() }()
	info, err := f.Stat()
	if err != nil {
		return checkpoint{}, nil, err
	}
	return decodeCheckpoint(bufio.NewReaderSize(f, 1<<16), info.Size())
}

// loadCheckpoint reads dir/CheckpointFile into store, creating the variables it lacks (in
// the saved order, so iteration order matches the saved run) and overwriting those it has.
// found is false if there is no checkpoint. The whole file is read and validated before
// the store is changed.
func loadCheckpoint(dir string, store *model.Store) (ck checkpoint, found bool, err error) {
	path := filepath.Join(dir, CheckpointFile)
	ck, vars, err := readCheckpoint(path)
	if errors.Is(err, fs.ErrNotExist) {
		if _, lerr := os.Stat(filepath.Join(dir, legacyCheckpointFile)); lerr == nil {
			return ck, false, fmt.Errorf("loading checkpoint: %s holds a checkpoint in the old gob format (%s), "+
				"which this version cannot read: delete it or use another CheckpointDir", dir, legacyCheckpointFile)
		}
		return ck, false, nil
	}
	wrap := func(err error) error { return fmt.Errorf("loading checkpoint %s: %w", path, err) }
	if err != nil {
		return ck, false, wrap(err)
	}
	for _, sv := range vars {
		if v := store.GetVariable(sv.Path); v != nil && !v.Shape().Equal(sv.Value.Shape()) {
			return ck, false, wrap(fmt.Errorf("variable %q has shape %s in the store and %s in the checkpoint",
				sv.Path, v.Shape(), sv.Value.Shape()))
		}
	}
	for _, sv := range vars {
		if v := store.GetVariable(sv.Path); v != nil {
			if err := v.SetValue(sv.Value); err != nil {
				return ck, false, wrap(fmt.Errorf("variable %q: %w", sv.Path, err))
			}
			v.Trainable = sv.Trainable
			continue
		}
		v, err := store.CreateVariable(sv.Path, sv.Value)
		if err != nil {
			return ck, false, wrap(fmt.Errorf("variable %q: %w", sv.Path, err))
		}
		v.Trainable = sv.Trainable
	}
	return ck, true, nil
}
