package zo_test

import (
	"math"
	"strings"
	"testing"

	"github.com/goptlab/goptlab/mlx/zo"
)

// TestConfigBounds checks the upper bound of Directions and the checks of the Name and
// Scope strings: each error names the field and what it allows.
func TestConfigBounds(t *testing.T) {
	ok := zo.Config{LR: 1e-3, Epsilon: 1e-3, Directions: 1}
	for _, tc := range []struct {
		edit func(*zo.Config)
		want string
	}{
		{func(c *zo.Config) { c.Directions = math.MaxInt }, "Directions=9223372036854775807 out of range: must be >= 1 and <= 1024 (MaxDirections)"},
		{func(c *zo.Config) { c.Directions = zo.MaxDirections + 1 }, "Directions=1025 out of range"},
		{func(c *zo.Config) { c.Scope = "   " }, `Scope="   " is invalid: part "   " starts or ends with a space`},
		{func(c *zo.Config) { c.Scope = "/" }, `Scope="/" is invalid: it has an empty part`},
		{func(c *zo.Config) { c.Scope = "zo\x00" }, `Scope="zo\x00" is invalid: it holds the control character U+0000`},
		{func(c *zo.Config) { c.Scope = strings.Repeat("z", 5000) }, "is invalid: it is 5000 bytes long, more than the limit of 1024"},
		{func(c *zo.Config) { c.Name = "  " }, `Name="  " is invalid: it is only spaces`},
		{func(c *zo.Config) { c.Name = "zo\nsgd" }, `Name="zo\nsgd" is invalid: it holds the control character U+000A`},
	} {
		cfg := ok
		tc.edit(&cfg)
		if _, err := zo.New(cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("want an error containing %q, got %v", tc.want, err)
		}
	}
	for _, edit := range []func(*zo.Config){
		func(c *zo.Config) { c.Directions = zo.MaxDirections },
		func(c *zo.Config) { c.Scope, c.Name = "zo2", "zo lr=1e-3" },
		func(c *zo.Config) { c.Scope = "/zo/inner" },
	} {
		cfg := ok
		edit(&cfg)
		if _, err := zo.New(cfg); err != nil {
			t.Errorf("a valid config was refused: %v", err)
		}
	}
}
