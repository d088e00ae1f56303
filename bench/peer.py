"""A benchmark worker for `make bench-peers`: JAX or PyTorch, driven by cmd/bench-peers.

It reads one JSON command per line on stdin and answers each with one JSON line on stdout
(anything else it prints goes to stderr). cmd/bench-peers starts one worker per system and
asks each, in turn, to run blocks of training steps, so that all systems are timed
interleaved in the same stretch of time (see docs/BENCHMARKS.md).

Commands (each answer has "ok": true, or "ok": false and "error"):
  {"op": "info"}                        versions, threads
  {"op": "setup", "id": ..., "model": {...}, "loss": "mse"|"xent", "batch": B,
   "opt": "adam"|"adan"|"adahessian", "lr": LR, "warmup": W}
                                        builds (and compiles) one training step, runs W
                                        steps; answers the parameter count
  {"op": "run", "id": ..., "steps": K}  runs K steps, reading the loss back after each (as a
                                        user's loop does); answers the seconds taken
  {"op": "drop", "id": ...}             forgets a case
  {"op": "gemm", "n": N, "reps": R}     float32 N x N matrix products: best seconds of R
  {"op": "quit"}

Models (the same functions as mlx/models, each in its system's usual layout):
  {"kind": "mlp", "dims": [in, h1, ..., out]}   dense layers with bias, ReLU between them
  {"kind": "cnn", "hw": 28, "channels": [32, 64], "classes": 10}
        per block conv 3x3 (same padding, bias) -> ReLU -> max pool 2x2; then dense to classes

Run as: python bench/peer.py jax|torch
"""

import json
import os
import sys
import time

import numpy as np

# Optimizer hyperparameters shared with cmd/bench-peers (the defaults of mlx/optim, except the
# learning rates, which are set by the driver).
ADAM = dict(b1=0.9, b2=0.999, eps=1e-8)
ADAN = dict(b1=0.98, b2=0.92, b3=0.99, eps=1e-8)
ADAHESSIAN = dict(b1=0.9, b2=0.999, eps=1e-4, power=1.0)


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def make_data(spec, batch, loss, channels_first):
    """Fixed random data: inputs in [-1, 1), MSE targets in [-1, 1), or class labels."""
    rng = np.random.default_rng(1)
    m = spec["model"] if "model" in spec else spec
    if m["kind"] == "mlp":
        x = rng.uniform(-1, 1, (batch, m["dims"][0])).astype(np.float32)
        out = m["dims"][-1]
    else:
        hw = m["hw"]
        shape = (batch, 1, hw, hw) if channels_first else (batch, hw, hw, 1)
        x = rng.uniform(-1, 1, shape).astype(np.float32)
        out = m["classes"]
    if loss == "mse":
        y = rng.uniform(-1, 1, (batch, out)).astype(np.float32)
    else:
        y = rng.integers(0, out, (batch,)).astype(np.int32)
    return x, y


# ----------------------------------------------------------------------------------- JAX


class JaxSystem:
    name = "jax"

    def __init__(self):
        import jax
        import jax.numpy as jnp
        import optax

        self.jax, self.jnp, self.optax = jax, jnp, optax
        self.cases = {}

    def info(self):
        import jaxlib
        import optax

        return {
            "python": sys.version.split()[0],
            "jax": self.jax.__version__,
            "jaxlib": jaxlib.__version__,
            "optax": optax.__version__,
            "numpy": np.__version__,
            "devices": [str(d) for d in self.jax.devices()],
            "numpy_blas": numpy_blas(),
            "xla_flags": os.environ.get("XLA_FLAGS", ""),
        }

    def init_params(self, m, key):
        jax, jnp = self.jax, self.jnp
        params = []
        if m["kind"] == "mlp":
            dims = m["dims"]
        else:
            cin = 1
            for ch in m["channels"]:
                key, k = jax.random.split(key)
                lim = np.sqrt(6 / (9 * cin + 9 * ch))
                params.append((jax.random.uniform(k, (3, 3, cin, ch), jnp.float32, -lim, lim), jnp.zeros((ch,), jnp.float32)))
                cin = ch
            side = m["hw"] // (2 ** len(m["channels"]))
            dims = [side * side * cin, m["classes"]]
        for a, b in zip(dims[:-1], dims[1:]):
            key, k = jax.random.split(key)
            lim = np.sqrt(6 / (a + b))
            params.append((jax.random.uniform(k, (a, b), jnp.float32, -lim, lim), jnp.zeros((b,), jnp.float32)))
        return params

    def forward(self, m, params, x):
        jax, jnp = self.jax, self.jnp
        i = 0
        if m["kind"] == "cnn":
            for _ in m["channels"]:
                w, b = params[i]
                i += 1
                x = jax.lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")) + b
                x = jax.nn.relu(x)
                x = jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")
            x = x.reshape(x.shape[0], -1)
        dense = params[i:]
        for j, (w, b) in enumerate(dense):
            x = x @ w + b
            if j + 1 < len(dense):
                x = jax.nn.relu(x)
        return x

    def setup(self, cmd):
        jax, jnp, optax = self.jax, self.jnp, self.optax
        m, loss_kind, lr = cmd["model"], cmd["loss"], cmd["lr"]
        params = self.init_params(m, jax.random.PRNGKey(7))
        x, y = make_data(cmd, cmd["batch"], loss_kind, channels_first=False)
        x, y = jnp.asarray(x), jnp.asarray(y)

        def loss_fn(p, x, y):
            out = self.forward(m, p, x)
            if loss_kind == "mse":
                return jnp.mean((out - y) ** 2)
            return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(out, y))

        opt = cmd["opt"]
        if opt in ("adam", "adan"):
            if opt == "adam":
                tx = optax.adam(lr, b1=ADAM["b1"], b2=ADAM["b2"], eps=ADAM["eps"])
            else:
                tx = optax.adan(lr, b1=ADAN["b1"], b2=ADAN["b2"], b3=ADAN["b3"], eps=ADAN["eps"], eps_root=0.0)
            state = tx.init(params)

            def step(p, s, x, y):
                loss, g = jax.value_and_grad(loss_fn)(p, x, y)
                upd, s = tx.update(g, s, p)
                return optax.apply_updates(p, upd), s, loss

        elif opt == "adahessian":
            state, step = self.adahessian(params, loss_fn, lr)
        else:
            raise ValueError(f"unknown optimizer {opt!r}")
        step = jax.jit(step, donate_argnums=(0, 1))
        case = {"params": params, "state": state, "x": x, "y": y, "step": step}
        self.cases[cmd["id"]] = case
        self.run(case, cmd.get("warmup", 2))
        count = sum(int(np.prod(a.shape)) for a in jax.tree_util.tree_leaves(params))
        return {"params": count}

    def adahessian(self, params, loss_fn, lr):
        """AdaHessian, written here: optax has no AdaHessian. The Hessian diagonal is
        Hutchinson's estimate z * (H z) with one Rademacher probe z, H z being the
        forward-mode derivative (jax.jvp) of the gradient along z; 4-D kernels average it over
        their spatial axes (HWIO: 0, 1), as the official code and mlx/optim do."""
        jax, jnp = self.jax, self.jnp
        h = ADAHESSIAN
        zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
        state = {"m": zeros, "v": jax.tree_util.tree_map(jnp.zeros_like, params), "t": jnp.zeros((), jnp.int32), "key": jax.random.PRNGKey(3)}

        def step(p, s, x, y):
            key, sub = jax.random.split(s["key"])
            leaves, tree = jax.tree_util.tree_flatten(p)
            keys = jax.random.split(sub, len(leaves))
            z = jax.tree_util.tree_unflatten(tree, [jax.random.rademacher(k, a.shape, jnp.float32) for k, a in zip(keys, leaves)])

            def grad_fn(q):
                loss, g = jax.value_and_grad(loss_fn)(q, x, y)
                return g, loss

            g, hz, loss = jax.jvp(grad_fn, (p,), (z,), has_aux=True)

            def diag(zi, hi):
                d = jnp.abs(zi * hi)
                return jnp.mean(d, axis=(0, 1), keepdims=True) * jnp.ones_like(d) if d.ndim == 4 else d

            d = jax.tree_util.tree_map(diag, z, hz)
            t = s["t"] + 1
            m = jax.tree_util.tree_map(lambda m, g: h["b1"] * m + (1 - h["b1"]) * g, s["m"], g)
            v = jax.tree_util.tree_map(lambda v, d: h["b2"] * v + (1 - h["b2"]) * d * d, s["v"], d)
            c1, c2 = 1 - h["b1"] ** t, 1 - h["b2"] ** t
            p = jax.tree_util.tree_map(
                lambda w, m, v: w - lr * (m / c1) / ((v / c2) ** (h["power"] / 2) + h["eps"]), p, m, v)
            return p, {"m": m, "v": v, "t": t, "key": key}, loss

        return state, step

    def run(self, case, steps):
        step, x, y = case["step"], case["x"], case["y"]
        p, s = case["params"], case["state"]
        start = time.perf_counter()
        for _ in range(steps):
            p, s, loss = step(p, s, x, y)
            float(loss)  # read back every step, as a user's loop does
        elapsed = time.perf_counter() - start
        case["params"], case["state"] = p, s
        return elapsed

    def gemm(self, n, reps):
        jax, jnp = self.jax, self.jnp
        rng = np.random.default_rng(0)
        a = rng.standard_normal((n, n), dtype=np.float32)
        b = rng.standard_normal((n, n), dtype=np.float32)
        res = {"numpy": best_of(reps, lambda: a @ b)}
        ja, jb = jnp.asarray(a), jnp.asarray(b)
        # The product alone, waited for on the device; and summed in the same jit (one number
        # back, as cmd/bench-peers times ours), which XLA CPU may fuse into a slower loop.
        f = jax.jit(lambda a, b: a @ b)
        res["jax_xla"] = best_of(reps, lambda: f(ja, jb).block_until_ready())
        fs = jax.jit(lambda a, b: jnp.sum(a @ b))
        res["jax_xla_sum"] = best_of(reps, lambda: float(fs(ja, jb)))
        return res


# ------------------------------------------------------------------------------- PyTorch


class TorchSystem:
    name = "torch"

    def __init__(self):
        import torch

        self.torch = torch
        torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "2")))
        self.cases = {}

    def info(self):
        from importlib.metadata import version

        torch = self.torch
        return {
            "python": sys.version.split()[0],
            "torch": torch.__version__,
            "pytorch_optimizer": version("pytorch_optimizer"),
            "threads": torch.get_num_threads(),
            "interop_threads": torch.get_num_interop_threads(),
            "cuda_available": torch.cuda.is_available(),
            "mkldnn": torch.backends.mkldnn.is_available(),
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", ""),
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS", ""),
        }

    def build(self, m):
        nn = self.torch.nn
        layers = []
        if m["kind"] == "mlp":
            dims = m["dims"]
        else:
            cin = 1
            for ch in m["channels"]:
                layers += [nn.Conv2d(cin, ch, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
                cin = ch
            side = m["hw"] // (2 ** len(m["channels"]))
            layers.append(nn.Flatten())
            dims = [side * side * cin, m["classes"]]
        for j, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
            layers.append(nn.Linear(a, b))
            if j + 2 < len(dims):
                layers.append(nn.ReLU())
        return nn.Sequential(*layers)

    def setup(self, cmd):
        import pytorch_optimizer

        torch = self.torch
        torch.manual_seed(7)
        model = self.build(cmd["model"])
        x, y = make_data(cmd, cmd["batch"], cmd["loss"], channels_first=True)
        x = torch.from_numpy(x)
        y = torch.from_numpy(y) if cmd["loss"] == "mse" else torch.from_numpy(y).long()
        loss_fn = torch.nn.MSELoss() if cmd["loss"] == "mse" else torch.nn.CrossEntropyLoss()
        lr, opt = cmd["lr"], cmd["opt"]
        if opt == "adam":
            o = torch.optim.Adam(model.parameters(), lr=lr, betas=(ADAM["b1"], ADAM["b2"]), eps=ADAM["eps"])
        elif opt == "adan":
            o = pytorch_optimizer.Adan(model.parameters(), lr=lr, betas=(ADAN["b1"], ADAN["b2"], ADAN["b3"]), eps=ADAN["eps"])
        elif opt == "adahessian":
            h = ADAHESSIAN
            o = pytorch_optimizer.AdaHessian(model.parameters(), lr=lr, betas=(h["b1"], h["b2"]), eps=h["eps"], hessian_power=h["power"])
        else:
            raise ValueError(f"unknown optimizer {opt!r}")
        case = {"model": model, "opt": o, "x": x, "y": y, "loss_fn": loss_fn, "create_graph": opt == "adahessian"}
        self.cases[cmd["id"]] = case
        self.run(case, cmd.get("warmup", 2))
        return {"params": sum(p.numel() for p in model.parameters())}

    def run(self, case, steps):
        model, o, x, y, loss_fn, cg = case["model"], case["opt"], case["x"], case["y"], case["loss_fn"], case["create_graph"]
        start = time.perf_counter()
        for _ in range(steps):
            o.zero_grad(set_to_none=True)
            loss = loss_fn(model(x), y)
            loss.backward(create_graph=cg)
            o.step()
            loss.item()  # read back every step, as a user's loop does
        return time.perf_counter() - start

    def gemm(self, n, reps):
        torch = self.torch
        a, b = torch.randn(n, n), torch.randn(n, n)
        return {"torch": best_of(reps, lambda: torch.mm(a, b))}


# --------------------------------------------------------------------------------- common


def numpy_blas():
    try:
        cfg = np.show_config(mode="dicts")
        blas = cfg.get("Build Dependencies", {}).get("blas", {})
        return f"{blas.get('name', '?')} {blas.get('version', '')}".strip()
    except Exception as e:  # older numpy: no mode="dicts"
        return f"unknown ({e})"


def best_of(reps, fn):
    fn()
    best = float("inf")
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def serve(system, inp, out):
    for line in inp:
        line = line.strip()
        if not line:
            continue
        try:
            cmd = json.loads(line)
            op = cmd["op"]
            if op == "quit":
                out.write(json.dumps({"ok": True}) + "\n")
                out.flush()
                return
            if op == "info":
                ans = system.info()
            elif op == "setup":
                start = time.perf_counter()
                ans = system.setup(cmd)
                ans["setup_s"] = time.perf_counter() - start
            elif op == "run":
                ans = {"seconds": system.run(system.cases[cmd["id"]], int(cmd["steps"]))}
            elif op == "drop":
                system.cases.pop(cmd["id"], None)
                ans = {}
            elif op == "gemm":
                ans = system.gemm(int(cmd["n"]), int(cmd.get("reps", 3)))
            else:
                raise ValueError(f"unknown op {op!r}")
            ans["ok"] = True
        except Exception as e:  # reported to the driver, which stops with it
            ans = {"ok": False, "error": f"{type(e).__name__}: {e}"}
        out.write(json.dumps(ans) + "\n")
        out.flush()


def main():
    if len(sys.argv) != 2 or sys.argv[1] not in ("jax", "torch"):
        sys.exit("usage: python bench/peer.py jax|torch")
    # Answers go to the real stdout; anything a library prints goes to stderr.
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    system = JaxSystem() if sys.argv[1] == "jax" else TorchSystem()
    serve(system, sys.stdin, out)


if __name__ == "__main__":
    main()
