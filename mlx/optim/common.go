package optim

import (
	"github.com/gomlx/compute/dtypes"
)

// Common holds the settings every optimizer config embeds.
type Common struct {
	// LR is the base learning rate, > 0. The schedule multiplies it.
	LR float64
	// Schedule is the learning-rate schedule; the zero value is a constant learning rate.
	Schedule Schedule
	// ScopeName names the absolute scope "/"+ScopeName under which the optimizer keeps its
	// state, so checkpoints save and restore it. Two optimizers on the same model.Store
	// (e.g. the inner and outer optimizers of DiLoCo) need different names. It must be
	// 1 to MaxScopeNameLen bytes of printable characters, without '/' or spaces.
	ScopeName string
	// DType is the dtype of the optimizer's state and arithmetic; dtypes.InvalidDType
	// (the zero value) means the loss's dtype.
	DType dtypes.DType
}

func (c Common) check(ck *checker) {
	ck.positive("LR", c.LR)
	ck.schedule(c.Schedule)
	ck.scopeName(c.ScopeName)
	if c.DType != dtypes.InvalidDType && !c.DType.IsFloat() {
		ck.fail("DType=%s is invalid: it must be a float dtype or dtypes.InvalidDType (the loss dtype)", c.DType)
	}
}

func (c Common) base(name string) base {
	return base{name: name, scopeName: c.ScopeName, lr: c.LR, schedule: c.Schedule, dtype: c.DType}
}
