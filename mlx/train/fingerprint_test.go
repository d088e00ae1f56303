package train

import (
	"slices"
	"strings"
	"sync"
	"testing"
)

type fpInner struct{ lr float64 }

type fpStepper struct {
	Stepper
	inner  *fpInner
	names  map[string]int
	sizes  []int
	hook   func()
	mu     sync.Mutex
	self   *fpStepper
	any    any
	events chan int
}

// TestStepperFingerprint checks that the fingerprint reads unexported fields, sorts map
// keys, stops at cycles, skips sync types and channels, and that the diff names each
// changed path with both values.
func TestStepperFingerprint(t *testing.T) {
	make1 := func(lr float64) *fpStepper {
		s := &fpStepper{inner: &fpInner{lr: lr}, names: map[string]int{"b": 2, "a": 1}, sizes: []int{3},
			hook: func() {}, any: int8(4), events: make(chan int)}
		s.self = s
		return s
	}
	got := stepperFingerprint(make1(0.5))
	want := []string{
		"stepper.(type)=*train.fpStepper", "stepper.Stepper=nil", "stepper.any.(type)=int8", "stepper.any=4",
		"stepper.hook=func", "stepper.inner.lr=0.5", "stepper.names.len=2", `stepper.names["a"]=1`,
		`stepper.names["b"]=2`, "stepper.sizes.len=1", "stepper.sizes[0]=3",
	}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("fingerprint:\n got %q\nwant %q", got, want)
	}
	diff := fingerprintDiff(got, stepperFingerprint(make1(0.25)), 8)
	if len(diff) != 1 || diff[0] != "stepper.inner.lr: 0.5 in the checkpoint, 0.25 now" {
		t.Errorf("diff: %q", diff)
	}
	if d := fingerprintDiff(got, got, 8); len(d) != 0 {
		t.Errorf("diff of equal fingerprints: %q", d)
	}
	many := fingerprintDiff([]string{"a=1", "b=1", "c=1"}, []string{"a=2", "b=2", "c=2"}, 2)
	if len(many) != 3 || many[2] != "..." || !strings.HasPrefix(many[0], "a: 1") {
		t.Errorf("diff limited to 2: %q", many)
	}
}
