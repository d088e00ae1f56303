package optim

import (
	"errors"
	"fmt"
	"math"
	"unicode"
	"unicode/utf8"
)

// Upper bounds of the integer settings. Larger values are never useful and would be
// silently wrong or unusable, so they are rejected like negative ones.
const (
	// MaxSteps bounds step counts (Schedule.WarmupSteps and DecaySteps, AdaHessian's
	// UpdateEvery): 2^24 = 16,777,216 is the largest count a float32 step counter (the
	// optimizers compute the schedule in the loss's dtype) holds exactly.
	MaxSteps = 1 << 24
	// MaxProbes bounds AdaHessian's Probes: each probe adds one Hessian-vector product
	// (a second backward pass) to the step's graph.
	MaxProbes = 64
	// MaxScopeNameLen bounds the length in bytes of an optimizer's ScopeName.
	MaxScopeNameLen = 128
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

// intIn checks lo <= n <= hi.
func (c *checker) intIn(name string, n, lo, hi int) {
	if n < lo || n > hi {
		c.fail("%s=%d is out of range: it must be in [%d, %d]", name, n, lo, hi)
	}
}

// scopeNameRule is the rule that scopeName enforces, as error messages state it.
const scopeNameRule = "it must be a non-empty name of at most 128 bytes of printable characters, without '/' or spaces"

// scopeName checks a state scope name: it becomes a path component of the optimizer's
// variables, shown in checkpoints and error messages.
func (c *checker) scopeName(name string) {
	if name == "" {
		c.fail("ScopeName is empty: %s", scopeNameRule)
		return
	}
	if len(name) > MaxScopeNameLen {
		c.fail("ScopeName of %d bytes is too long: %s", len(name), scopeNameRule)
		return
	}
	if !utf8.ValidString(name) {
		c.fail("ScopeName=%q is not valid UTF-8: %s", name, scopeNameRule)
		return
	}
	for _, r := range name {
		if r == '/' || unicode.IsSpace(r) || !unicode.IsPrint(r) {
			c.fail("ScopeName=%q is invalid (character %q): %s", name, r, scopeNameRule)
			return
		}
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
