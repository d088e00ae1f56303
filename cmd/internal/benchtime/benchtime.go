// Package benchtime times the benchmark commands' candidates side by side: in rounds in
// which every candidate runs once in turn, so that load from other processes hits them
// alike, and ratios taken between them come from the same stretch of time.
package benchtime

import (
	"fmt"
	"slices"
	"time"
)

// Interleaved runs rounds rounds; in each, every function of fns runs once, in order. It
// returns the times of each function, times[i][r] being fns[i]'s time in round r, or the
// first error (naming its function and round). Warm-up is the caller's: Interleaved times
// every call it makes.
func Interleaved(rounds int, fns ...func() error) ([][]time.Duration, error) {
	if rounds < 1 {
		return nil, fmt.Errorf("benchtime: rounds=%d out of range: must be >= 1", rounds)
	}
	times := make([][]time.Duration, len(fns))
	for i := range times {
		times[i] = make([]time.Duration, 0, rounds)
	}
	for r := range rounds {
		for i, fn := range fns {
			start := time.Now()
			if err := fn(); err != nil {
				return nil, fmt.Errorf("benchtime: function %d, round %d: %w", i, r, err)
			}
			times[i] = append(times[i], time.Since(start))
		}
	}
	return times, nil
}

// Median returns the median of ts (the upper one of the two middle values for an even
// count), leaving ts as it is. ts must not be empty.
func Median(ts []time.Duration) time.Duration {
	s := slices.Clone(ts)
	slices.Sort(s)
	return s[len(s)/2]
}
