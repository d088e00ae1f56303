package optim

import (
	"errors"
	"fmt"
	"math"
	"strings"
)

// checker collects the first hyperparameter error of a configuration, naming the
// parameter and its valid range.
type checker struct {
	opt string // optimizer name, for the message
	err error
}

func (c *checker) fail(format string, args ...any) {
	if c.err == nil {
		c.err = fmt.Errorf("optim.%s: %s", c.opt, fmt.Sprintf(format, args...))
	}
}

func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }

// positive checks x > 0.
func (c *checker) positive(name string, x float64) {
	if !finite(x) || x <= 0 {
		c.fail("%s=%g is out of range: it must be > 0", name, x)
	}
}

// nonNegative checks x >= 0.
func (c *checker) nonNegative(name string, x float64) {
	if !finite(x) || x < 0 {
		c.fail("%s=%g is out of range: it must be >= 0", name, x)
	}
}

// beta checks x in [0, 1).
func (c *checker) beta(name string, x float64) {
	if !finite(x) || x < 0 || x >= 1 {
		c.fail("%s=%g is out of range: it must be in [0, 1)", name, x)
	}
}

// closedUnit checks x in [0, 1].
func (c *checker) closedUnit(name string, x float64) {
	if !finite(x) || x < 0 || x > 1 {
		c.fail("%s=%g is out of range: it must be in [0, 1]", name, x)
	}
}

// intAtLeast checks n >= lo.
func (c *checker) intAtLeast(name string, n, lo int) {
	if n < lo {
		c.fail("%s=%d is out of range: it must be >= %d", name, n, lo)
	}
}

// scopeName checks a state scope name.
func (c *checker) scopeName(name string) {
	if name == "" {
		c.fail("ScopeName is empty: it must be a non-empty name without '/'")
	} else if strings.ContainsRune(name, '/') {
		c.fail("ScopeName=%q is invalid: it must be a non-empty name without '/'", name)
	}
}

// schedule validates a learning-rate schedule.
func (c *checker) schedule(s Schedule) {
	if err := s.Validate(); err != nil && c.err == nil {
		c.err = fmt.Errorf("optim.%s: %w", c.opt, err)
	}
}

// errNoGradients is panicked (graph building) when an update gets no gradients.
var errNoGradients = errors.New("no gradients: are there trainable variables used by the loss?")
