package gomlxerr

import (
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/core/tensors"
)

func TestCatch(t *testing.T) {
	if err := Catch(func() error { return nil }); err != nil {
		t.Errorf("no panic, no error: got %v", err)
	}
	if err := Catch(func() error { return io.EOF }); !errors.Is(err, io.EOF) {
		t.Errorf("returned error: got %v, want io.EOF", err)
	}
	if err := Catch(func() error { panic(io.ErrUnexpectedEOF) }); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("panic with an error: got %v, want it wrapped", err)
	}
	if err := Catch(func() error { panic("shape mismatch") }); err == nil || err.Error() != "shape mismatch" {
		t.Errorf("panic with a string: got %v", err)
	}
}

func TestScalarFloat(t *testing.T) {
	for _, tc := range []struct {
		tensor *tensors.Tensor
		want   float64
	}{{tensors.FromValue(float32(1.5)), 1.5}, {tensors.FromValue(-2.25), -2.25}} {
		got, err := ScalarFloat(tc.tensor)
		if err != nil || got != tc.want {
			t.Errorf("ScalarFloat(%s) = %v, %v; want %v", tc.tensor, got, err, tc.want)
		}
	}
	if _, err := ScalarFloat(tensors.FromValue([]float32{1, 2})); err == nil || !strings.Contains(err.Error(), "want a scalar") {
		t.Errorf("a vector: got %v, want an error", err)
	}
	if _, err := ScalarFloat(tensors.FromValue(int32(3))); err == nil || !strings.Contains(err.Error(), "want float32 or float64") {
		t.Errorf("an int32: got %v, want an error", err)
	}
}
