package localsgd

import (
	"math"
	"strings"
	"testing"
)

// TestConfigBounds checks the upper bounds of Workers and LocalSteps and the checks of the
// Name and StorePrefix strings: each error names the field and what it allows.
func TestConfigBounds(t *testing.T) {
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{Workers: math.MaxInt, LocalSteps: 1}, "Workers (K) = 9223372036854775807: must be >= 1 and <= 1024 (MaxWorkers)"},
		{Config{Workers: MaxWorkers + 1, LocalSteps: 1}, "Workers (K) = 1025"},
		{Config{Workers: 2, LocalSteps: math.MaxInt}, "LocalSteps (H) = 9223372036854775807: must be >= 1 and <= 2147483647 (MaxLocalSteps)"},
		{Config{Workers: 2, LocalSteps: 1, Name: "   "}, `Name = "   " is invalid: it is only spaces`},
		{Config{Workers: 2, LocalSteps: 1, Name: "fed\x00avg"}, `Name = "fed\x00avg" is invalid: it holds the control character U+0000`},
		{Config{Workers: 2, LocalSteps: 1, StorePrefix: "  "}, `StorePrefix = "  " is invalid: part "  " starts or ends with a space`},
		{Config{Workers: 2, LocalSteps: 1, StorePrefix: "/a\x00"}, `StorePrefix = "/a\x00" is invalid: it holds the control character U+0000`},
		{Config{Workers: 2, LocalSteps: 1, StorePrefix: "a//b"}, `StorePrefix = "a//b" is invalid: it has an empty part`},
	} {
		if _, err := New(sgd(0.1, false), c.cfg); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("New(%+v) error = %v, want one containing %q", c.cfg, err, c.want)
		}
	}
	for _, cfg := range []Config{
		{Workers: MaxWorkers, LocalSteps: MaxLocalSteps},
		{Workers: 2, LocalSteps: 1, Name: "diloco K=2", StorePrefix: "/ls/run 1"},
	} {
		if _, err := New(sgd(0.1, false), cfg); err != nil {
			t.Errorf("New(%+v) refused a valid config: %v", cfg, err)
		}
	}
}
