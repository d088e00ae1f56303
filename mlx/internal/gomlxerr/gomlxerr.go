// Package gomlxerr turns GoMLX's conventions into errors at the edge of the project's
// non-graph APIs: graph-building functions panic, and scalar results come back as
// tensors of one of several dtypes.
package gomlxerr

import (
	"fmt"
	"math"

	"github.com/gomlx/gomlx/core/tensors"
)

// Catch runs fn and returns its error, or the panic it raised as an error (a panic with an
// error value is wrapped, so errors.Is and errors.As still see it).
func Catch(fn func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			if e, ok := r.(error); ok {
				err = fmt.Errorf("%w", e)
			} else {
				err = fmt.Errorf("%v", r)
			}
		}
	}()
	return fn()
}

// ScalarFloat reads a float32 or float64 scalar tensor as a float64.
func ScalarFloat(t *tensors.Tensor) (float64, error) {
	if !t.Shape().IsScalar() {
		return 0, fmt.Errorf("want a scalar, got shape %s", t.Shape())
	}
	switch v := t.Value().(type) {
	case float32:
		return float64(v), nil
	case float64:
		return v, nil
	default:
		return math.NaN(), fmt.Errorf("unsupported dtype %s: want float32 or float64", t.DType())
	}
}
