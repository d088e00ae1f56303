#!/usr/bin/env python3
"""Golden first steps for mlx/optim, computed independently from the official update rules.

Pure Python (no third-party packages). Run from this folder:

    python3 golden.py            # writes golden.json

The problem is a separable quartic with two parameter tensors, so its Hessian is
diagonal and AdaHessian's Hutchinson estimate is exact for any Rademacher probe:

    f(w) = sum_i a_i/2 (w_i - c_i)^2 + b_i/4 (w_i - c_i)^4

"w" is a vector of 3, "k" a 4-D kernel [2, 2, 1, 2] (GoMLX layout: height, width, in, out),
flattened row-major. Each case lists the parameter values after each of STEPS steps.
The update rules are transcribed from the official code named in each class, not from
the Go implementation. The papers and repositories:

    SGD, Adam, AdamW, AMSGrad  torch.optim (https://github.com/pytorch/pytorch); Kingma & Ba,
                               arXiv:1412.6980; Loshchilov & Hutter, arXiv:1711.05101;
                               Reddi, Kale & Kumar, arXiv:1904.09237
    AdaBelief   Zhuang et al., arXiv:2010.07468,
                https://github.com/juntang-zhuang/Adabelief-Optimizer (adabelief-pytorch 0.2)
    Lion        Chen et al., "Symbolic Discovery of Optimization Algorithms", arXiv:2302.06675,
                https://github.com/google/automl (lion/lion_pytorch.py)
    Adan        Xie et al., "Adan: Adaptive Nesterov Momentum Algorithm for Faster Optimizing
                Deep Models", arXiv:2208.06677, https://github.com/sail-sg/Adan (adan.py)
    AdaHessian  Yao et al., "ADAHESSIAN: An Adaptive Second Order Optimizer for Machine
                Learning", arXiv:2006.00719, https://github.com/amirgholami/adahessian
                (image_classification/optim_adahessian.py)
    SAM / ASAM  Foret et al., arXiv:2010.01412 (https://github.com/google-research/sam);
                Kwon et al., arXiv:2102.11600; as in https://github.com/davda54/sam
"""
import json
import math

STEPS = 8
SHAPES = {"w": [3], "k": [2, 2, 1, 2]}
INIT = {"w": [1.5, -0.7, 0.3], "k": [0.9, -1.2, 0.4, 2.0, -0.5, 0.8, 1.1, -1.6]}
A = {"w": [1.0, 4.0, 0.5], "k": [2.0, 0.3, 1.0, 3.0, 0.7, 1.5, 0.2, 2.5]}
B = {"w": [0.1, 0.0, 0.3], "k": [0.0, 0.2, 0.1, 0.05, 0.3, 0.0, 0.15, 0.1]}
C = {"w": [0.2, 0.5, -1.0], "k": [0.1, 0.3, -0.2, 0.5, 0.0, -0.4, 0.6, 0.2]}
NAMES = ["w", "k"]


def grad(p):
    return {n: [A[n][i] * (p[n][i] - C[n][i]) + B[n][i] * (p[n][i] - C[n][i]) ** 3
                for i in range(len(p[n]))] for n in NAMES}


def hess_diag(p):
    return {n: [A[n][i] + 3 * B[n][i] * (p[n][i] - C[n][i]) ** 2 for i in range(len(p[n]))] for n in NAMES}


def zeros():
    return {n: [0.0] * len(INIT[n]) for n in NAMES}


def sched_factor(s, k):
    """Schedule: linear warm-up for s['warmup'] steps, then cosine/linear decay."""
    if s is None:
        return 1.0
    w = s.get("warmup", 0)
    if w > 0 and k <= w:
        return k / w
    decay = s.get("decay", "none")
    if decay == "none":
        return 1.0
    t = min(1.0, max(0.0, (k - w) / s["decay_steps"]))
    f = s["final"]
    if decay == "cosine":
        return f + (1 - f) * 0.5 * (1 + math.cos(math.pi * t))
    return 1 - (1 - f) * t


class SGD:  # torch.optim.SGD, dampening 0
    def __init__(self, lr, momentum=0.0, nesterov=False, wd=0.0, schedule=None):
        self.lr, self.mu, self.nesterov, self.wd, self.s = lr, momentum, nesterov, wd, schedule
        self.buf, self.k = zeros(), 0

    def step(self, p, g):
        self.k += 1
        lr = self.lr * sched_factor(self.s, self.k)
        for n in NAMES:
            for i in range(len(p[n])):
                gi = g[n][i] + self.wd * p[n][i]
                d = gi
                if self.mu > 0:
                    self.buf[n][i] = self.mu * self.buf[n][i] + gi
                    d = gi + self.mu * self.buf[n][i] if self.nesterov else self.buf[n][i]
                p[n][i] -= lr * d


class Adam:  # torch.optim.Adam / AdamW, amsgrad
    def __init__(self, lr, b1=0.9, b2=0.999, eps=1e-8, wd=0.0, decoupled=False, amsgrad=False, schedule=None):
        self.lr, self.b1, self.b2, self.eps, self.wd = lr, b1, b2, eps, wd
        self.decoupled, self.amsgrad, self.s = decoupled, amsgrad, schedule
        self.m, self.v, self.vmax, self.k = zeros(), zeros(), zeros(), 0

    def step(self, p, g):
        self.k += 1
        k = self.k
        lr = self.lr * sched_factor(self.s, k)
        bc1, bc2 = 1 - self.b1 ** k, 1 - self.b2 ** k
        for n in NAMES:
            for i in range(len(p[n])):
                gi = g[n][i]
                if self.wd:
                    if self.decoupled:
                        p[n][i] *= 1 - lr * self.wd
                    else:
                        gi += self.wd * p[n][i]
                self.m[n][i] = self.b1 * self.m[n][i] + (1 - self.b1) * gi
                self.v[n][i] = self.b2 * self.v[n][i] + (1 - self.b2) * gi * gi
                v = self.v[n][i]
                if self.amsgrad:
                    self.vmax[n][i] = max(self.vmax[n][i], v)
                    v = self.vmax[n][i]
                denom = math.sqrt(v) / math.sqrt(bc2) + self.eps
                p[n][i] -= lr / bc1 * self.m[n][i] / denom


class AdaBelief:  # adabelief_pytorch 0.2.0, rectify=False
    def __init__(self, lr, b1=0.9, b2=0.999, eps=1e-16, wd=0.0, decouple=True):
        self.lr, self.b1, self.b2, self.eps, self.wd, self.decouple = lr, b1, b2, eps, wd, decouple
        self.m, self.s, self.k = zeros(), zeros(), 0

    def step(self, p, g):
        self.k += 1
        k, lr = self.k, self.lr
        bc1, bc2 = 1 - self.b1 ** k, 1 - self.b2 ** k
        for n in NAMES:
            for i in range(len(p[n])):
                gi = g[n][i]
                if self.decouple:
                    p[n][i] *= 1 - lr * self.wd
                elif self.wd:
                    gi += self.wd * p[n][i]
                self.m[n][i] = self.b1 * self.m[n][i] + (1 - self.b1) * gi
                r = gi - self.m[n][i]
                self.s[n][i] = self.b2 * self.s[n][i] + (1 - self.b2) * r * r
                self.s[n][i] += self.eps  # exp_avg_var.add_(eps) is in place in the official code
                denom = math.sqrt(self.s[n][i]) / math.sqrt(bc2) + self.eps
                p[n][i] -= lr / bc1 * self.m[n][i] / denom


class Lion:  # google/automl lion_pytorch.py
    def __init__(self, lr, b1=0.9, b2=0.99, wd=0.0):
        self.lr, self.b1, self.b2, self.wd = lr, b1, b2, wd
        self.m = zeros()

    def step(self, p, g):
        for n in NAMES:
            for i in range(len(p[n])):
                gi = g[n][i]
                c = self.b1 * self.m[n][i] + (1 - self.b1) * gi
                sign = (c > 0) - (c < 0)
                p[n][i] = p[n][i] * (1 - self.lr * self.wd) - self.lr * sign
                self.m[n][i] = self.b2 * self.m[n][i] + (1 - self.b2) * gi


class Adan:  # sail-sg/Adan adan.py
    def __init__(self, lr, b1=0.98, b2=0.92, b3=0.99, eps=1e-8, wd=0.0, no_prox=False, max_grad_norm=0.0):
        self.lr, self.b1, self.b2, self.b3, self.eps, self.wd = lr, b1, b2, b3, eps, wd
        self.no_prox, self.max_grad_norm = no_prox, max_grad_norm
        self.m, self.v, self.n, self.prev, self.k = zeros(), zeros(), zeros(), zeros(), 0

    def step(self, p, g):
        self.k += 1
        k, lr = self.k, self.lr
        g = {n: list(g[n]) for n in NAMES}
        if self.max_grad_norm > 0:
            norm = math.sqrt(sum(x * x for n in NAMES for x in g[n]))
            clip = min(1.0, self.max_grad_norm / (norm + self.eps))
            g = {n: [x * clip for x in g[n]] for n in NAMES}
        if k == 1:
            self.prev = {n: list(g[n]) for n in NAMES}
        bc1, bc2, bc3 = 1 - self.b1 ** k, 1 - self.b2 ** k, 1 - self.b3 ** k
        for n in NAMES:
            for i in range(len(p[n])):
                gi = g[n][i]
                d = gi - self.prev[n][i]
                self.m[n][i] = self.b1 * self.m[n][i] + (1 - self.b1) * gi
                self.v[n][i] = self.b2 * self.v[n][i] + (1 - self.b2) * d
                u = gi + self.b2 * d
                self.n[n][i] = self.b3 * self.n[n][i] + (1 - self.b3) * u * u
                denom = math.sqrt(self.n[n][i]) / math.sqrt(bc3) + self.eps
                step = lr * (self.m[n][i] / bc1 + self.b2 * self.v[n][i] / bc2) / denom
                if self.no_prox:
                    p[n][i] = p[n][i] * (1 - lr * self.wd) - step
                else:
                    p[n][i] = (p[n][i] - step) / (1 + lr * self.wd)
                self.prev[n][i] = gi


class AdaHessian:  # amirgholami/adahessian optim_adahessian.py; exact D on this separable problem
    """update_every > 1 (a later variant's option): v and its bias correction advance only on
    steps k with (k-1) % update_every == 0; spatial=False turns the kernel averaging off."""

    def __init__(self, lr=0.15, b1=0.9, b2=0.999, eps=1e-4, wd=0.0, power=1.0, schedule=None,
                 update_every=1, spatial=True):
        self.lr, self.b1, self.b2, self.eps, self.wd, self.power, self.s = lr, b1, b2, eps, wd, power, schedule
        self.update_every, self.spatial = update_every, spatial
        self.m, self.v, self.k, self.hk = zeros(), zeros(), 0, 0

    def step(self, p, g):
        self.k += 1
        k = self.k
        lr = self.lr * sched_factor(self.s, k)
        h = hess_diag(p)
        d = {"w": [abs(x) for x in h["w"]]}
        # spatial averaging of the 4-D kernel [h, w, in, out] over axes 0 and 1
        hk = [abs(x) for x in h["k"]]
        avg = [sum(hk[(a * 2 + b) * 2 + o] for a in range(2) for b in range(2)) / 4 for o in range(2)]
        d["k"] = [avg[i % 2] for i in range(8)] if self.spatial else hk
        refresh = (k - 1) % self.update_every == 0
        if refresh:
            self.hk += 1
        bc1, bc2 = 1 - self.b1 ** k, 1 - self.b2 ** self.hk
        for n in NAMES:
            for i in range(len(p[n])):
                self.m[n][i] = self.b1 * self.m[n][i] + (1 - self.b1) * g[n][i]
                if refresh:
                    self.v[n][i] = self.b2 * self.v[n][i] + (1 - self.b2) * d[n][i] ** 2
                denom = (math.sqrt(self.v[n][i]) / math.sqrt(bc2)) ** self.power + self.eps
                p[n][i] -= lr * (self.m[n][i] / bc1 / denom + self.wd * p[n][i])


class SAM:  # davda54/sam: perturb by rho*T^2 g/||T g||, base step with the gradient there
    def __init__(self, base, rho, adaptive=False, eps=1e-12):
        self.base, self.rho, self.adaptive, self.eps = base, rho, adaptive, eps

    def step(self, p, g):
        t = {n: [abs(x) if self.adaptive else 1.0 for x in p[n]] for n in NAMES}
        norm = math.sqrt(sum((t[n][i] * g[n][i]) ** 2 for n in NAMES for i in range(len(p[n]))))
        scale = self.rho / (norm + self.eps)
        q = {n: [p[n][i] + t[n][i] ** 2 * g[n][i] * scale for i in range(len(p[n]))] for n in NAMES}
        self.base.step(p, grad(q))


CASES = {
    "sgd": lambda: SGD(0.05),
    "sgd_nesterov_wd": lambda: SGD(0.05, momentum=0.9, nesterov=True, wd=0.01),
    "sgd_momentum_linear": lambda: SGD(0.05, momentum=0.8, schedule={"decay": "linear", "decay_steps": 6, "final": 0.2}),
    "adam": lambda: Adam(0.1, wd=0.01),
    "adamw": lambda: Adam(0.1, wd=0.1, decoupled=True),
    "amsgrad": lambda: Adam(0.1, amsgrad=True),
    "adam_warmup_cosine": lambda: Adam(0.1, schedule={"warmup": 2, "decay": "cosine", "decay_steps": 4, "final": 0.1}),
    "adabelief": lambda: AdaBelief(0.1, wd=0.1),
    "lion": lambda: Lion(0.01, wd=0.1),
    "adan": lambda: Adan(0.05, wd=0.02),
    "adan_noprox_clip": lambda: Adan(0.05, wd=0.02, no_prox=True, max_grad_norm=1.0),
    "adahessian": lambda: AdaHessian(0.15, wd=0.001),
    "adahessian_power_linear": lambda: AdaHessian(0.15, power=0.5,
                                                  schedule={"decay": "linear", "decay_steps": 8, "final": 0.0}),
    "adahessian_every3_nospatial": lambda: AdaHessian(0.15, update_every=3, spatial=False),
    "sam_sgd": lambda: SAM(SGD(0.05), 0.05),
    "asam_adam": lambda: SAM(Adam(0.05), 0.5, adaptive=True),
}


def main():
    out = {"steps": STEPS, "shapes": SHAPES, "init": INIT, "a": A, "b": B, "c": C, "cases": {}}
    for name, make in CASES.items():
        opt = make()
        p = {n: list(INIT[n]) for n in NAMES}
        traj = []
        for _ in range(STEPS):
            opt.step(p, grad(p))
            traj.append({n: list(p[n]) for n in NAMES})
        out["cases"][name] = traj
    with open("golden.json", "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
