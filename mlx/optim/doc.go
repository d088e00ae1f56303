// Package optim holds the optimizers of goptlab's research notebooks, each written from the
// authors' official code (papers and repositories under References below) and checked step by
// step against an independent pure-Python transcription of it (testdata/golden.py, to float64
// precision).
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
// store.SetRNGStateFromSeed for reproducible runs. [Optimizer.StateScope] gives the scope.
//
// The state variables, by optimizer (per-variable slots are "<variable name>_<slot>" under
// StateScope() plus the variable's own scope; the others sit directly under StateScope()):
//
//	every optimizer   step (int64, [StepVariable]), learning_rate ([LearningRateVariable])
//	SGD               slot momentum (with Momentum > 0)
//	Adam, AdamW       slots m, v; AMSGrad adds vmax
//	AdaBelief         slots m, s
//	Lion              slot m
//	Adan              slots m, v, n, prev_grad; counter k (the bias-correction step, reset by Restart)
//	AdaHessian        slots m, hessian_sq; counter hessian_updates
//	NewChain          the slots its transforms name: momentum (Momentum), m, v, vmax (ScaleByAdam),
//	                  m, v, n, prev_grad and counter k (ScaleByAdan), m, s (ScaleByBelief), m (ScaleByLion),
//	                  m, hessian_sq and counter hessian_updates (ScaleByAdaHessian), acc and counter
//	                  accumulate_step (Accumulate), slow (Lookahead), ema (EMAWeights): the names of the
//	                  optimizers above, so a chain and its optimizer read each other's checkpoints
//
// # Building blocks
//
// [NewChain] builds an [Optimizer] from [Transform]s, plain Go functions of a [Step] (the
// parameters, the updates, the step counter, the scheduled learning rate, named state
// slots and, when the step is built from the loss, [Step.HessianVectorProducts]), in the spirit
// of optax's chain: [AddL2], [AddDecayedWeights], [ProximalDecay], [ClipByGlobalNorm],
// [ClipByGlobalNormEps], [ClipByValue], [Momentum], [ScaleByAdam], [ScaleByAdan],
// [ScaleByBelief], [ScaleByLion], [ScaleByAdaHessian], [ScaleBySchedule], [ScaleByLR],
// [Accumulate] (gradient accumulation), [Lookahead] and [EMAWeights] (an average of the
// weights). Every optimizer above but SAM is equal bit for bit to its chain (for a config
// cfg with betas b1, b2, b3, eps and weight decay wd; TestChainBitForBit checks each in
// float64 and float32 on both backends):
//
//	SGD        NewChain("sgd", cfg.Common, AddL2(wd), Momentum(mu, nesterov), ScaleByLR())
//	Adam       NewChain("adam", cfg.Common, AddL2(wd), ScaleByAdam(b1, b2, eps, false), ScaleByLR())
//	AdamW      NewChain("adamw", cfg.Common, ScaleByAdam(b1, b2, eps, false), AddDecayedWeights(wd), ScaleByLR())
//	AMSGrad    NewChain("amsgrad", cfg.Common, ScaleByAdam(b1, b2, eps, true), ScaleByLR())
//	AdaBelief  NewChain("adabelief", cfg.Common, ScaleByBelief(b1, b2, eps), AddDecayedWeights(wd), ScaleByLR())
//	           Coupled: AddL2(wd) first instead of AddDecayedWeights(wd)
//	Lion       NewChain("lion", cfg.Common, ScaleByLion(b1, b2), AddDecayedWeights(wd), ScaleByLR())
//	Adan       NewChain("adan", cfg.Common, ClipByGlobalNormEps(cfg.MaxGradNorm, eps) (with MaxGradNorm > 0),
//	               ScaleByAdan(b1, b2, b3, eps), ProximalDecay(wd), ScaleByLR())
//	           NoProx: AddDecayedWeights(wd) instead of ProximalDecay(wd)
//	AdaHessian NewChain("adahessian", cfg.Common, ScaleByAdaHessian(b1, b2, eps, cfg.HessianPower,
//	               HessianEstimate{cfg.Probes, cfg.Gaussian, cfg.UpdateEvery, cfg.KernelSpatialAxes}),
//	               AddL2(wd), ScaleByLR())
//
// The AdaHessian chain differentiates the loss twice, so its step must be built with
// UpdateGraph (the hand-written AdaHessian also accepts autodiff gradients through
// UpdateGraphWithGradients, as SAM and local SGD pass them). SAM is not a chain: it
// evaluates the loss at a second point, which a transform of one step's gradients cannot
// do; it wraps any optimizer, a chain included.
// A new rule is one Transform; notebooks/new-optimizer.ipynb writes ADOPT in 14 lines.
// [BiasCorrection] computes 1 - beta^k in float64 and rounds once (PyTorch's rule; every
// optimizer here uses it) and [GlobalNorm] the norm of all gradients together. Package
// optimtest runs an optimizer on standard problems and compares its trajectory with a
// reference.
//
// # Second-order autodiff
//
// AdaHessian needs the gradient of a gradient. GoMLX v0.28.8 lacks some of the gradient
// rules this runs into (the gradient of max-pooling, of batch normalization, of strided
// or permuted-axes convolutions, Rsqrt, Clamp, ...); this package registers them in
// graph.VJPRegistration when it is imported (see vjp.go), each checked against finite
// differences on both backends. GoMLX's pure-Go backend has no BatchNormForTraining
// operation at all, so batch normalization trains only on XLA.
//
// # References
//
// The papers, and the code each optimizer follows where the two differ:
//
//   - SGD with heavy-ball or Nesterov momentum: PyTorch's torch.optim.SGD (dampening 0),
//     https://github.com/pytorch/pytorch (torch/optim/sgd.py).
//   - Adam: D. P. Kingma, J. Ba, "Adam: A Method for Stochastic Optimization",
//     arXiv:1412.6980; PyTorch's torch.optim.Adam.
//   - AdamW: I. Loshchilov, F. Hutter, "Decoupled Weight Decay Regularization",
//     arXiv:1711.05101; PyTorch's torch.optim.AdamW.
//   - AMSGrad: S. J. Reddi, S. Kale, S. Kumar, "On the Convergence of Adam and Beyond",
//     arXiv:1904.09237; PyTorch's amsgrad=True.
//   - AdaBelief: J. Zhuang, T. Tang, Y. Ding, S. Tatikonda, N. Dvornek, X. Papademetris,
//     J. S. Duncan, "AdaBelief Optimizer: Adapting Stepsizes by the Belief in Observed
//     Gradients", arXiv:2010.07468; https://github.com/juntang-zhuang/Adabelief-Optimizer
//     (adabelief-pytorch 0.2).
//   - Lion: X. Chen, C. Liang, D. Huang, E. Real, K. Wang, Y. Liu, H. Pham, X. Dong, T. Luong,
//     C.-J. Hsieh, Y. Lu, Q. V. Le, "Symbolic Discovery of Optimization Algorithms",
//     arXiv:2302.06675; https://github.com/google/automl (lion/lion_pytorch.py).
//   - Adan: X. Xie, P. Zhou, H. Li, Z. Lin, S. Yan, "Adan: Adaptive Nesterov Momentum
//     Algorithm for Faster Optimizing Deep Models", arXiv:2208.06677;
//     https://github.com/sail-sg/Adan (adan.py).
//   - AdaHessian: Z. Yao, A. Gholami, S. Shen, M. Mustafa, K. Keutzer, M. W. Mahoney,
//     "ADAHESSIAN: An Adaptive Second Order Optimizer for Machine Learning",
//     arXiv:2006.00719; https://github.com/amirgholami/adahessian
//     (image_classification/optim_adahessian.py).
//   - SAM: P. Foret, A. Kleiner, H. Mobahi, B. Neyshabur, "Sharpness-Aware Minimization for
//     Efficiently Improving Generalization", arXiv:2010.01412;
//     https://github.com/google-research/sam (JAX) and the PyTorch transcription
//     https://github.com/davda54/sam, which [SAM] follows.
//   - ASAM: J. Kwon, J. Kim, H. Park, I. K. Choi, "ASAM: Adaptive Sharpness-Aware
//     Minimization for Scale-Invariant Learning of Deep Neural Networks", arXiv:2102.11600;
//     https://github.com/SamsungLabs/ASAM.
package optim
