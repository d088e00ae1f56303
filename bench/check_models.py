"""Checks that bench/peer.py's JAX and PyTorch models compute the same function.

With PyTorch's initial weights copied into the JAX parameters (transposed to JAX's layouts:
dense [in, out], conv HWIO, and the first dense layer after the convolutions permuted from
PyTorch's CHW flattening to JAX's HWC), both must give the same outputs and losses on the same
inputs, for an MLP and a CNN of the benchmark's structure (small sizes: the structure is what
is checked; the benchmark itself checks every case's parameter count against ours).
`make bench-peers` runs it before the benchmark. Prints "N passed, M failed"; exits 1 on a failure.
"""

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import peer  # noqa: E402


def torch_to_jax(m, model, jp):
    """Copies the torch model's weights into JAX's parameter list layout."""
    import jax.numpy as jnp
    import torch

    mods = [x for x in model if isinstance(x, (torch.nn.Conv2d, torch.nn.Linear))]
    params = []
    for i, mod in enumerate(mods):
        w = mod.weight.detach().numpy()
        b = mod.bias.detach().numpy()
        if isinstance(mod, torch.nn.Conv2d):
            w = w.transpose(2, 3, 1, 0)  # OIHW -> HWIO
        else:
            first_dense_after_conv = m["kind"] == "cnn" and i == len(m["channels"])
            if first_dense_after_conv:
                side = m["hw"] // (2 ** len(m["channels"]))
                c = m["channels"][-1]
                w = w.reshape(w.shape[0], c, side, side).transpose(2, 3, 1, 0).reshape(side * side * c, w.shape[0])
            else:
                w = w.T
        params.append((jnp.asarray(w), jnp.asarray(b)))
    assert len(params) == len(jp), (len(params), len(jp))
    for (w, b), (w2, b2) in zip(params, jp):
        assert w.shape == w2.shape and b.shape == b2.shape, (w.shape, w2.shape)
    return params


def check(m, loss, batch=3):
    import jax
    import torch

    js, ts = peer.JaxSystem(), peer.TorchSystem()
    torch.manual_seed(0)
    model = ts.build(m)
    jparams = js.init_params(m, jax.random.PRNGKey(0))
    params = torch_to_jax(m, model, jparams)
    xt, y = peer.make_data({"model": m}, batch, loss, channels_first=True)
    xj = xt.transpose(0, 2, 3, 1) if m["kind"] == "cnn" else xt
    out_t = model(torch.from_numpy(xt)).detach().numpy()
    out_j = np.asarray(js.forward(m, params, xj))
    np.testing.assert_allclose(out_j, out_t, rtol=1e-4, atol=1e-5)
    n_t = sum(p.numel() for p in model.parameters())
    n_j = sum(int(np.prod(a.shape)) for a in jax.tree_util.tree_leaves(jparams))
    assert n_t == n_j, (n_t, n_j)


def main():
    cases = [
        ({"kind": "mlp", "dims": [2, 64, 64, 1]}, "mse"),
        ({"kind": "mlp", "dims": [7, 5, 3, 4]}, "xent"),
        ({"kind": "cnn", "hw": 8, "channels": [2, 3], "classes": 4}, "xent"),
        ({"kind": "cnn", "hw": 28, "channels": [32, 64], "classes": 10}, "xent"),
    ]
    passed = failed = 0
    for m, loss in cases:
        try:
            check(m, loss)
            passed += 1
        except AssertionError as e:
            failed += 1
            print(f"FAIL {m} {loss}: {e}")
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
