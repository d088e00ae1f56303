package train

import (
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
)

// Configured is optionally implemented by a [Stepper] whose value holds more than its
// configuration (a trace of past steps, counters, caches). TrainConfig returns the
// configuration alone: checkpoints record it (see [Config.ResumeAnyway]), so that a run
// does not resume a checkpoint written with other hyperparameters.
//
// Without it, Run records the Stepper value itself, or, for [FirstOrder], the optimizer.
type Configured interface {
	TrainConfig() any
}

// Limits of a fingerprint: nesting depth, and number of lines.
const (
	maxFingerprintDepth = 12
	maxFingerprintLines = 4096
)

// stepperFingerprint describes the configuration of stepper as sorted "path=value" lines.
func stepperFingerprint(stepper Stepper) []string {
	var root string
	var v any
	switch s := stepper.(type) {
	case Configured:
		root, v = "config", s.TrainConfig()
	case *firstOrder:
		root, v = "optimizer", s.opt
	default:
		root, v = "stepper", s
	}
	fp := &fingerprinter{seen: map[uintptr]bool{}}
	rv := reflect.ValueOf(v)
	if rv.IsValid() {
		fp.add(root+".(type)", rv.Type().String())
	}
	fp.walk(root, rv, 0)
	slices.Sort(fp.lines)
	return fp.lines
}

// fingerprinter walks a value with reflection and records its scalar leaves. It reads
// unexported fields too (optimizers keep their settings there) and skips what is not
// configuration: functions' bodies, channels, unsafe pointers and sync types.
type fingerprinter struct {
	lines []string
	seen  map[uintptr]bool
}

func (f *fingerprinter) add(path, value string) {
	if len(f.lines) < maxFingerprintLines {
		f.lines = append(f.lines, path+"="+value)
	}
}

func (f *fingerprinter) walk(path string, v reflect.Value, depth int) {
	if !v.IsValid() {
		f.add(path, "nil")
		return
	}
	if depth > maxFingerprintDepth || len(f.lines) >= maxFingerprintLines {
		return
	}
	switch v.Kind() {
	case reflect.Bool:
		f.add(path, strconv.FormatBool(v.Bool()))
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		f.add(path, strconv.FormatInt(v.Int(), 10))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		f.add(path, strconv.FormatUint(v.Uint(), 10))
	case reflect.Float32, reflect.Float64:
		f.add(path, strconv.FormatFloat(v.Float(), 'g', -1, 64))
	case reflect.Complex64, reflect.Complex128:
		f.add(path, strconv.FormatComplex(v.Complex(), 'g', -1, 128))
	case reflect.String:
		f.add(path, strconv.Quote(v.String()))
	case reflect.Func:
		f.add(path, map[bool]string{true: "nil", false: "func"}[v.IsNil()])
	case reflect.Pointer:
		if v.IsNil() {
			f.add(path, "nil")
			return
		}
		if f.seen[v.Pointer()] {
			return
		}
		f.seen[v.Pointer()] = true
		defer delete(f.seen, v.Pointer())
		f.walk(path, v.Elem(), depth+1)
	case reflect.Interface:
		if v.IsNil() {
			f.add(path, "nil")
			return
		}
		f.add(path+".(type)", v.Elem().Type().String())
		f.walk(path, v.Elem(), depth+1)
	case reflect.Struct:
		if pkg := v.Type().PkgPath(); pkg == "sync" || pkg == "sync/atomic" {
			return
		}
		for i := range v.NumField() {
			f.walk(path+"."+v.Type().Field(i).Name, v.Field(i), depth+1)
		}
	case reflect.Slice, reflect.Array:
		if v.Kind() == reflect.Slice && v.IsNil() {
			f.add(path, "nil")
			return
		}
		f.add(path+".len", strconv.Itoa(v.Len()))
		for i := range v.Len() {
			f.walk(fmt.Sprintf("%s[%d]", path, i), v.Index(i), depth+1)
		}
	case reflect.Map:
		if v.IsNil() {
			f.add(path, "nil")
			return
		}
		keys := v.MapKeys()
		names := make([]string, len(keys))
		for i, k := range keys {
			names[i] = fmt.Sprint(mapKey(k))
		}
		order := make([]int, len(keys))
		for i := range order {
			order[i] = i
		}
		slices.SortFunc(order, func(a, b int) int { return strings.Compare(names[a], names[b]) })
		f.add(path+".len", strconv.Itoa(len(keys)))
		for _, i := range order {
			f.walk(path+"["+names[i]+"]", v.MapIndex(keys[i]), depth+1)
		}
	}
	// Chan, UnsafePointer: not configuration.
}

// mapKey returns a printable form of a map key read through reflection (which may come
// from an unexported field, whose values cannot be turned into interfaces).
func mapKey(k reflect.Value) string {
	fp := &fingerprinter{seen: map[uintptr]bool{}}
	fp.walk("", k, 0)
	for i, l := range fp.lines {
		fp.lines[i] = strings.TrimPrefix(l, "=")
	}
	return strings.Join(fp.lines, ",")
}

// fingerprintDiff describes the differences between two fingerprints (old: the
// checkpoint's, new: this run's), at most limit of them.
func fingerprintDiff(old, new []string, limit int) []string {
	parse := func(lines []string) map[string]string {
		m := make(map[string]string, len(lines))
		for _, l := range lines {
			k, v, _ := strings.Cut(l, "=")
			m[k] = v
		}
		return m
	}
	om, nm := parse(old), parse(new)
	keys := make([]string, 0, len(om)+len(nm))
	for k := range om {
		keys = append(keys, k)
	}
	for k := range nm {
		if _, ok := om[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	// Where a value's type changed, its fields are not compared one by one.
	var retyped []string
	for _, k := range keys {
		if p, ok := strings.CutSuffix(k, ".(type)"); ok && om[k] != nm[k] {
			retyped = append(retyped, p)
		}
	}
	under := func(k string) bool {
		for _, p := range retyped {
			if k != p+".(type)" && (strings.HasPrefix(k, p+".") || strings.HasPrefix(k, p+"[")) {
				return true
			}
		}
		return false
	}
	var out []string
	for _, k := range keys {
		if under(k) {
			continue
		}
		o, inOld := om[k]
		n, inNew := nm[k]
		switch {
		case inOld && inNew && o == n:
			continue
		case !inOld:
			o = "(absent)"
		case !inNew:
			n = "(absent)"
		}
		if len(out) == limit {
			out = append(out, "...")
			break
		}
		out = append(out, fmt.Sprintf("%s: %s in the checkpoint, %s now", k, o, n))
	}
	return out
}
