package data

import (
	"slices"
	"strings"
	"testing"
)

func TestSubset(t *testing.T) {
	ds, err := New("d", []Column{{Dims: []int{2}, Float32: []float32{0, 1, 10, 11, 20, 21, 30, 31}}},
		[]Column{{Dims: []int{1}, Int32: []int32{0, 1, 2, 3}}})
	if err != nil {
		t.Fatal(err)
	}
	sub, err := ds.Subset("s", []int{3, 1, 1})
	if err != nil {
		t.Fatal(err)
	}
	if sub.Name() != "s" || sub.Len() != 3 {
		t.Fatalf("Subset: name %q, len %d", sub.Name(), sub.Len())
	}
	if got := sub.Inputs()[0].Float32; !slices.Equal(got, []float32{30, 31, 10, 11, 10, 11}) {
		t.Errorf("inputs %v", got)
	}
	if got := sub.Labels()[0].Int32; !slices.Equal(got, []int32{3, 1, 1}) {
		t.Errorf("labels %v", got)
	}
	sub.Inputs()[0].Float32[0] = -1
	if ds.Inputs()[0].Float32[6] != 30 {
		t.Error("Subset shares its values with the original")
	}
	for _, rows := range [][]int{nil, {4}, {-1}} {
		if _, err := ds.Subset("bad", rows); err == nil || !strings.Contains(err.Error(), "bad") {
			t.Errorf("Subset(%v): err = %v", rows, err)
		}
	}
	if got := Range(2, 5); !slices.Equal(got, []int{2, 3, 4}) {
		t.Errorf("Range(2, 5) = %v", got)
	}
	if got := Range(5, 2); len(got) != 0 {
		t.Errorf("Range(5, 2) = %v", got)
	}
}
