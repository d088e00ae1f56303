// Package optim holds the optimizers of goptlab's research notebooks, each written from the
// authors' official code (see /work/shared/ALGORITHMS.md) and checked step by step against an
// independent pure-Python transcription of it (testdata/golden.py, to float64 precision).
//
// # Optimizers
//
// Every optimizer below implements [Optimizer]: GoMLX's optimizer.Interface (UpdateGraph,
// Clear), so it works with GoMLX's train.Trainer and with mlx/train's train.FirstOrder, plus
// UpdateGraphWithGradients, which applies a step from given gradients (one per trainable
// variable, in scope.IterVariables() order: GoMLX's convention), as gradient accumulation,
// zeroth-order estimators (ZO-Adam, ZO-momentum) and local SGD / DiLoCo need.
//
//	NewSGD(DefaultSGD())              SGD, heavy-ball or Nesterov momentum, L2 weight decay (PyTorch's rules)
//	NewAdam(DefaultAdam())            Adam (PyTorch's rules: eps outside the square root)
//	NewAdam(DefaultAdamW())           AdamW: decoupled weight decay
//	NewAdam(DefaultAMSGrad())         AMSGrad: running maximum of the second moment
//	NewAdaBelief(DefaultAdaBelief())  AdaBelief, official adabelief-pytorch 0.2 (eps kept inside s), no rectification
//	NewLion(DefaultLion())            Lion, official google/automl code
//	NewAdan(DefaultAdan())            Adan, official sail-sg/Adan code: three betas, proximal or AdamW-like
//	                                  decay, global gradient-norm clipping, first step g_prev = g, Adan.Restart
//	NewAdaHessian(DefaultAdaHessian()) AdaHessian, official amirgholami/adahessian code: Hutchinson diagonal
//	                                  with real Rademacher (or Gaussian) probes, several probes averaged,
//	                                  refresh every N steps, spatial averaging of 4-D kernels, hessian power
//	NewSAM(base, DefaultSAM())        SAM / ASAM around any of the above, as a train.Stepper (see [SAM])
//
// [HutchinsonDiagonal] and [RademacherProbe] are exported for experiments on the Hessian
// estimate itself.
//
// # Options
//
// Each optimizer has a config struct whose Default... constructor holds the official
// defaults; change its fields and pass it to New..., which validates it: an out-of-range
// hyperparameter gives an error naming the parameter and its valid range (for example
// "optim.Adam: Beta2=1 is out of range: it must be in [0, 1)"). Every config embeds [Common]:
//
//	LR         base learning rate (> 0)
//	Schedule   learning-rate [Schedule]: linear warm-up, then cosine or linear decay (zero value: constant)
//	ScopeName  the state scope "/"+ScopeName (two optimizers on one store need different names)
//	DType      dtype of the state and arithmetic (zero value: the loss dtype)
//
// and the optimizer-specific fields: Momentum, Nesterov (SGD); Beta1, Beta2, Eps,
// WeightDecay, Decoupled, AMSGrad (Adam); Coupled (AdaBelief); Beta1..Beta3, NoProx,
// MaxGradNorm (Adan); HessianPower, Probes, Gaussian, UpdateEvery, KernelSpatialAxes
// (AdaHessian); Rho, Adaptive, Eps (SAM).
//
// # State
//
// Optimizer state (moments, the step counter "step", the base "learning_rate") lives in
// non-trainable model variables under "/"+ScopeName, named after the trainable variable
// ("/adan/dense/weights_m"), so checkpoints save and restore it; Clear deletes it. Setting
// the learning_rate variable changes the learning rate of a running optimizer. Random probes
// (AdaHessian) come from the store's random number generator: seed it with
// store.SetRNGStateFromSeed for reproducible runs.
//
// # Second-order autodiff
//
// AdaHessian needs the gradient of a gradient. GoMLX v0.28.8 lacks some of the gradient
// rules this runs into (the gradient of max-pooling, of batch normalization, of strided
// or permuted-axes convolutions, Rsqrt, Clamp, ...); this package registers them in
// graph.VJPRegistration when it is imported (see vjp.go), each checked against finite
// differences on both backends. GoMLX's pure-Go backend has no BatchNormForTraining
// operation at all, so batch normalization trains only on XLA.
package optim
