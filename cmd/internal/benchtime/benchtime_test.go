package benchtime

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestMedian(t *testing.T) {
	ts := []time.Duration{5, 1, 4, 2, 3}
	if got := Median(ts); got != 3 {
		t.Errorf("Median(%v) = %v, want 3", ts, got)
	}
	if ts[0] != 5 || ts[4] != 3 {
		t.Errorf("Median reordered its argument: %v", ts)
	}
	if got := Median([]time.Duration{4, 1, 3, 2}); got != 3 {
		t.Errorf("Median of 4 values = %v, want the upper middle one, 3", got)
	}
}

func TestInterleavedRunsEveryFunctionOncePerRound(t *testing.T) {
	var order []int
	fn := func(i int) func() error { return func() error { order = append(order, i); return nil } }
	times, err := Interleaved(3, fn(0), fn(1))
	if err != nil {
		t.Fatal(err)
	}
	if want := []int{0, 1, 0, 1, 0, 1}; !slices.Equal(order, want) {
		t.Errorf("call order %v, want %v", order, want)
	}
	if len(times) != 2 || len(times[0]) != 3 || len(times[1]) != 3 {
		t.Errorf("times %v: want 2 functions x 3 rounds", times)
	}
}

func TestInterleavedStopsAtTheFirstError(t *testing.T) {
	calls := 0
	boom := errors.New("boom")
	_, err := Interleaved(5, func() error { calls++; return nil }, func() error { return boom })
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "function 1, round 0") {
		t.Errorf("error = %v, want boom in function 1, round 0", err)
	}
	if calls != 1 {
		t.Errorf("the first function ran %d times, want 1", calls)
	}
	if _, err := Interleaved(0); err == nil {
		t.Error("rounds=0: want an error")
	}
}
