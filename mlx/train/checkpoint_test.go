package train_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/goptlab/goptlab/mlx/data"
	"github.com/goptlab/goptlab/mlx/history"
	"github.com/goptlab/goptlab/mlx/mlxtest"
	"github.com/goptlab/goptlab/mlx/train"
)

// testStore returns a Store with variables of several dtypes and shapes (an empty one
// included), as a checkpoint may hold.
func testStore(t testing.TB) *model.Store {
	t.Helper()
	store := model.NewStore()
	add := func(path string, value *tensors.Tensor, trainable bool) {
		v, err := store.CreateVariable(path, value)
		if err != nil {
			t.Fatal(err)
		}
		v.Trainable = trainable
	}
	add("/model/dense/weights", tensors.FromValue([][]float32{{1, -2}, {float32(math.Inf(1)), 0.5}, {3, 4}}), true)
	add("/model/dense/biases", tensors.FromValue([]float64{math.Pi, -0.0}), true)
	add("/#rngState", tensors.FromValue([]uint64{1, 1 << 63, 42}), false)
	add("/adam/step", tensors.FromScalar(int64(-7)), false)
	add("/mask", tensors.FromValue([]bool{true, false, true}), false)
	add("/counts", tensors.FromValue([]int32{-1, 2}), false)
	add("/empty", tensors.FromShape(shapes.Make(dtypes.Float32, 0, 5)), false)
	return store
}

func testRecords() []history.Record {
	return []history.Record{
		{Step: 1, Time: 0.25, Evals: 2, Loss: 1.5},
		{Step: 2, Time: 0.5, Evals: 4, Loss: math.NaN(), Metrics: map[string]float64{"skipped": 1, "eval_loss": math.Inf(-1)}},
	}
}

// checkpointBytes returns a real small checkpoint file.
func checkpointBytes(t testing.TB) []byte {
	t.Helper()
	dir := t.TempDir()
	if err := train.SaveCheckpoint(dir, testStore(t), 2, 9, testRecords()); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, train.CheckpointFile))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestCheckpointRoundTrip(t *testing.T) {
	dir := t.TempDir()
	saved := testStore(t)
	if err := train.SaveCheckpoint(dir, saved, 2, 9, testRecords()); err != nil {
		t.Fatal(err)
	}
	loaded := model.NewStore()
	step, records, found, err := train.LoadCheckpoint(dir, loaded)
	if err != nil || !found || step != 2 {
		t.Fatalf("LoadCheckpoint: step %d, found %v, error %v", step, found, err)
	}
	if got, want := len(records), len(testRecords()); got != want {
		t.Fatalf("%d records, want %d", got, want)
	}
	for i, want := range testRecords() {
		got := records[i]
		if got.Step != want.Step || got.Time != want.Time || got.Evals != want.Evals ||
			math.Float64bits(got.Loss) != math.Float64bits(want.Loss) || len(got.Metrics) != len(want.Metrics) {
			t.Errorf("record %d: got %+v, want %+v", i, got, want)
		}
		for k, v := range want.Metrics {
			if math.Float64bits(got.Metrics[k]) != math.Float64bits(v) {
				t.Errorf("record %d metric %q: got %v, want %v", i, k, got.Metrics[k], v)
			}
		}
	}
	var wantPaths, gotPaths []string
	for v := range saved.IterVariables() {
		wantPaths = append(wantPaths, v.Path())
	}
	for v := range loaded.IterVariables() {
		gotPaths = append(gotPaths, v.Path())
	}
	if !reflect.DeepEqual(gotPaths, wantPaths) {
		t.Fatalf("loaded variables %v, want %v in the same order", gotPaths, wantPaths)
	}
	wb, gb := storeBits(t, saved), storeBits(t, loaded)
	if !reflect.DeepEqual(wb, gb) {
		t.Fatalf("loaded bits %v, want %v", gb, wb)
	}
	for v := range saved.IterVariables() {
		lv := loaded.GetVariable(v.Path())
		if lv.Trainable != v.Trainable || !lv.Shape().Equal(v.Shape()) {
			t.Errorf("%s: loaded trainable=%v shape %s, want %v %s", v.Path(), lv.Trainable, lv.Shape(), v.Trainable, v.Shape())
		}
	}

	// A store whose variable has another shape is refused, and left unchanged.
	other := model.NewStore()
	if _, err := other.CreateVariable("/model/dense/biases", tensors.FromValue([]float64{1, 2, 3})); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := train.LoadCheckpoint(dir, other); err == nil || !strings.Contains(err.Error(), "shape") {
		t.Fatalf("want a shape error, got %v", err)
	}
	n := 0
	for range other.IterVariables() {
		n++
	}
	if n != 1 {
		t.Fatalf("a refused checkpoint changed the store: %d variables", n)
	}
}

func TestCheckpointRejectsCorruption(t *testing.T) {
	good := checkpointBytes(t)
	if _, _, n, err := train.DecodeCheckpoint(good); err != nil || n != 7 {
		t.Fatalf("the good checkpoint: %d variables, error %v", n, err)
	}
	for size := range len(good) {
		if _, _, _, err := train.DecodeCheckpoint(good[:size]); err == nil {
			t.Fatalf("truncated to %d of %d bytes: no error", size, len(good))
		}
	}
	if _, _, _, err := train.DecodeCheckpoint(append(good, 0)); err == nil {
		t.Fatal("one extra byte: no error")
	}
	// Every corrupted byte is detected: by the magic number, the version, the lengths or a checksum.
	for i := range good {
		for _, mask := range []byte{0x01, 0x80, 0xff} {
			bad := bytes.Clone(good)
			bad[i] ^= mask
			if _, _, _, err := train.DecodeCheckpoint(bad); err == nil {
				t.Fatalf("byte %d xor %#x: no error", i, mask)
			}
		}
	}
	// A corrupt file in CheckpointDir stops Run with an error instead of restarting silently.
	dir := t.TempDir()
	bad := bytes.Clone(good)
	bad[len(bad)-10] ^= 1
	if err := os.WriteFile(filepath.Join(dir, train.CheckpointFile), bad, 0o644); err != nil {
		t.Fatal(err)
	}
	backend := mlxtest.Backends(t)[0].Backend
	_, err := train.Run(backend, model.NewStore(), linearLoss, data.LinearRegression(), sgd(0.1),
		train.Config{Steps: 3, Seed: 9, CheckpointDir: dir})
	if err == nil || !strings.Contains(err.Error(), "checksum") || !strings.Contains(err.Error(), train.CheckpointFile) {
		t.Fatalf("want a checksum error naming the file, got %v", err)
	}
	// A checkpoint in the format of earlier versions is refused with an explanation.
	legacy := t.TempDir()
	if err := os.WriteFile(filepath.Join(legacy, "checkpoint.gob"), []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = train.Run(backend, model.NewStore(), linearLoss, data.LinearRegression(), sgd(0.1),
		train.Config{Steps: 3, Seed: 9, CheckpointDir: legacy})
	if err == nil || !strings.Contains(err.Error(), "old gob format") {
		t.Fatalf("want an old-format error, got %v", err)
	}
}

// hostile wraps a header in a checkpoint file with a valid prefix and header checksum,
// followed by dataBytes zero bytes and a (wrong) data checksum.
func hostile(header []byte, dataBytes int) []byte {
	b := []byte("GOPTCKPT")
	b = binary.LittleEndian.AppendUint32(b, 1)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(header)))
	b = append(b, header...)
	b = binary.LittleEndian.AppendUint32(b, crc32.Checksum(header, crc32.MakeTable(crc32.Castagnoli)))
	b = append(b, make([]byte, dataBytes)...)
	return binary.LittleEndian.AppendUint32(b, 0)
}

// header builds a header: step 3, seed, batch size, stepper, dataset, then the given tail
// (records and variables).
func header(tail ...[]byte) []byte { return headerWithStep(3, tail...) }

func headerWithStep(step int64, tail ...[]byte) []byte {
	b := binary.AppendVarint(nil, step)
	b = binary.AppendVarint(b, 1)
	b = binary.AppendVarint(b, 4)
	b = append(b, 1, 'x', 1, 'd')
	for _, t := range tail {
		b = append(b, t...)
	}
	return b
}

func uv(xs ...uint64) []byte {
	var b []byte
	for _, x := range xs {
		b = binary.AppendUvarint(b, x)
	}
	return b
}

// hostileCheckpoints are files with valid checksums whose headers claim sizes that do
// not fit, or hold invalid values.
func hostileCheckpoints() map[string][]byte {
	variable := func(path string, dtype uint64, dims ...uint64) []byte {
		b := append(uv(uint64(len(path))), path...)
		b = append(b, 1)
		return append(b, uv(append([]uint64{dtype, uint64(len(dims))}, dims...)...)...)
	}
	return map[string][]byte{
		"2^62 records": hostile(header(uv(1<<62, 0)), 0),
		"2^40 metrics": hostile(header(uv(1), binary.AppendVarint(nil, 1), make([]byte, 8), binary.AppendVarint(nil, 2),
			make([]byte, 8), uv(1<<40), uv(0)), 0),
		"2^62 variables":        hostile(header(uv(0), uv(1<<62)), 0),
		"huge dimensions":       hostile(header(uv(0, 1), variable("/w", 11, 1<<31-1, 1<<31-1, 1<<31-1)), 16),
		"dimension overflow":    hostile(header(uv(0, 1), variable("/w", 11, 1<<31-1, 1<<31-1, 1<<31-1, 1<<31-1, 1<<31-1)), 16),
		"dimension above int32": hostile(header(uv(0, 1), variable("/w", 11, 1<<40)), 16),
		"rank 1000":             hostile(header(uv(0, 1), variable("/w", 11, make([]uint64, 1000)...)), 0),
		"dtype 0":               hostile(header(uv(0, 1), variable("/w", 0, 2)), 8),
		"dtype 99":              hostile(header(uv(0, 1), variable("/w", 99, 2)), 8),
		"path without slash":    hostile(header(uv(0, 1), variable("w", 11, 2)), 8),
		"duplicate path":        hostile(header(uv(0, 2), variable("/w", 11, 1), variable("/w", 11, 1)), 8),
		"data too short":        hostile(header(uv(0, 1), variable("/w", 11, 4)), 8),
		"data too long":         hostile(header(uv(0, 1), variable("/w", 11, 1)), 8),
		"string length 2^60":    hostile(append(binary.AppendVarint(binary.AppendVarint(binary.AppendVarint(nil, 3), 1), 4), uv(1<<60)...), 0),
		"negative step":         hostile(headerWithStep(-3, uv(0, 0)), 0),
		"header length 2^32-1":  append([]byte("GOPTCKPT\x01\x00\x00\x00\xff\xff\xff\xff"), make([]byte, 16)...),
		"version 3":             append([]byte("GOPTCKPT\x03\x00\x00\x00\x00\x00\x00\x00"), make([]byte, 16)...),
	}
}

// decodeBounded decodes b, failing the test if it panics (the fuzzing engine reports it) or
// allocates more than a small multiple of len(b).
func decodeBounded(t *testing.T, b []byte) error {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, _, _, err := train.DecodeCheckpoint(b)
	// Random bytes may well be a valid header: only panics and allocations matter here.
	_ = train.DecodeCheckpointHeader(b, int64(len(b)))
	runtime.ReadMemStats(&after)
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 1<<20+512*uint64(len(b)) {
		t.Fatalf("decoding %d bytes allocated %d bytes", len(b), alloc)
	}
	return err
}

func TestCheckpointRejectsHostileHeaders(t *testing.T) {
	for name, b := range hostileCheckpoints() {
		err := decodeBounded(t, b)
		if err == nil {
			t.Errorf("%s: no error", name)
			continue
		}
		if strings.Contains(err.Error(), "checksum") && !strings.Contains(name, "data too") {
			t.Errorf("%s: rejected only by a checksum (%v), the header check should catch it", name, err)
		}
	}
}

// FuzzLoadCheckpoint decodes arbitrary bytes as a checkpoint file, and as a checkpoint
// header: malformed input must give an error, never a panic or a large allocation. The
// seed corpus holds a real small checkpoint, its truncations and bit flips, and hostile
// headers with valid checksums. Run it with
//
//	go test -run='^$' -fuzz=FuzzLoadCheckpoint -fuzztime=20s ./mlx/train
func FuzzLoadCheckpoint(f *testing.F) {
	good := checkpointBytes(f)
	f.Add(good)
	for _, n := range []int{0, 8, 12, 16, 20, 40, len(good) / 2, len(good) - 5, len(good) - 1} {
		f.Add(good[:n])
	}
	for _, i := range []int{0, 9, 13, 17, 30, 60, len(good) - 20, len(good) - 2} {
		bad := bytes.Clone(good)
		bad[i] ^= 0x10
		f.Add(bad)
	}
	headerAt := train.CheckpointLayout()
	headerLen := int(binary.LittleEndian.Uint32(good[headerAt-4:]))
	f.Add(good[headerAt : headerAt+headerLen]) // A bare valid header exercises DecodeCheckpointHeader.
	for _, b := range hostileCheckpoints() {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		_ = decodeBounded(t, b)
	})
}

// failingWriter fails (or, with crash set, panics as a crash would stop the process) once
// limit bytes were written.
type failingWriter struct {
	w     io.Writer
	limit int
	crash bool
}

var errInjected = errors.New("injected write failure")

func (f *failingWriter) Write(p []byte) (int, error) {
	if len(p) <= f.limit {
		f.limit -= len(p)
		return f.w.Write(p)
	}
	n, _ := f.w.Write(p[:f.limit])
	f.limit = 0
	if f.crash {
		panic("simulated crash during the checkpoint write")
	}
	return n, errInjected
}

// tempFiles lists the temporary checkpoint files in dir.
func tempFiles(t testing.TB, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, train.CheckpointFile+".*.tmp"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestCheckpointWriteFaultsKeepThePreviousOne injects a write error, then a crash, in the
// middle of a checkpoint write (after 100 bytes: inside the header), and checks that the
// previous checkpoint is intact and resumes, that the failed write left no temporary file,
// and that the crash's partial temporary file is ignored and removed by the next Run.
func TestCheckpointWriteFaultsKeepThePreviousOne(t *testing.T) {
	mlxtest.ForEach(t, func(t *testing.T, backend compute.Backend) {
		ds := data.LinearRegression()
		dir := t.TempDir()
		cfg := train.Config{Steps: 4, Seed: 3, CheckpointDir: dir, CheckpointEvery: 2}
		first, err := train.Run(backend, model.NewStore(), linearLoss, ds, sgd(0.05), cfg)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, train.CheckpointFile)
		previous, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		checkPrevious := func(what string) {
			t.Helper()
			b, err := os.ReadFile(path)
			if err != nil || !bytes.Equal(b, previous) {
				t.Fatalf("%s: the previous checkpoint changed (%d bytes, error %v)", what, len(b), err)
			}
			if step, _, n, err := train.DecodeCheckpoint(b); err != nil || step != 4 || n == 0 {
				t.Fatalf("%s: the previous checkpoint does not load: step %d, %d variables, error %v", what, step, n, err)
			}
		}

		cfg.Steps = 8
		restore := train.SetCheckpointWriteHook(func(w io.Writer) io.Writer { return &failingWriter{w: w, limit: 100} })
		_, err = train.Run(backend, model.NewStore(), linearLoss, ds, sgd(0.05), cfg)
		restore()
		if !errors.Is(err, errInjected) || !strings.Contains(err.Error(), "saving the checkpoint of step 6") {
			t.Fatalf("want the injected error while saving step 6, got %v", err)
		}
		checkPrevious("after a failed write")
		if tmp := tempFiles(t, dir); len(tmp) != 0 {
			t.Fatalf("a failed write left temporary files %v", tmp)
		}

		restore = train.SetCheckpointWriteHook(func(w io.Writer) io.Writer { return &failingWriter{w: w, limit: 100, crash: true} })
		func() {
			defer func() {
				if r := recover(); r == nil {
					t.Fatal("the simulated crash did not happen")
				}
			}()
			_, _ = train.Run(backend, model.NewStore(), linearLoss, ds, sgd(0.05), cfg)
		}()
		restore()
		checkPrevious("after a crash")
		tmp := tempFiles(t, dir)
		if len(tmp) != 1 {
			t.Fatalf("the simulated crash should leave one partial temporary file, found %v", tmp)
		}
		if info, err := os.Stat(tmp[0]); err != nil || info.Size() != 100 {
			t.Fatalf("partial temporary file: %v, %v", info, err)
		}

		// The next run ignores and removes the partial file, and resumes from step 4.
		resumed, err := train.Run(backend, model.NewStore(), linearLoss, ds, sgd(0.05), cfg)
		if err != nil {
			t.Fatal(err)
		}
		if tmp := tempFiles(t, dir); len(tmp) != 0 {
			t.Fatalf("the partial temporary file was not removed: %v", tmp)
		}
		if len(resumed.Records) != 8 {
			t.Fatalf("resumed run has %d records, want 8", len(resumed.Records))
		}
		for i, r := range first.Records {
			if g := resumed.Records[i]; g.Step != r.Step || g.Loss != r.Loss || g.Evals != r.Evals || g.Time != r.Time {
				t.Fatalf("record %d: resumed %+v, first run %+v", i, resumed.Records[i], r)
			}
		}
	})
}
