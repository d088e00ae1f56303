"""Times an ipykernel running JAX the way kernel/bench_kernel.py times our Go kernel.

For each of N fresh kernels (the bench venv's ipykernel, started by jupyter_client):
  cold: from asking for a new kernel to the first output of its first cell, a cell that imports
        jax and optax and runs one jitted training step of a one-layer model (the same model,
        data and SGD step as our kernel test's first cell);
  warm: from sending a second such cell (a changed learning rate, so JAX traces and compiles
        again) to its first output.
Prints one JSON line: {"cold": median seconds, "warm": median seconds, "colds": [...], "warms": [...]}.
"""

import argparse
import json
import queue
import statistics
import sys
import time

from jupyter_client.manager import KernelManager

CELL = """import jax, jax.numpy as jnp, optax
w = jnp.array([[0.5], [-0.25]], jnp.float32)
x = jnp.array([[1, 2], [3, 4]], jnp.float32)
y = jnp.array([[1], [2]], jnp.float32)
tx = optax.sgd(LR)
def loss_fn(w):
    return jnp.mean((x @ w - y) ** 2)
@jax.jit
def step(w, s):
    loss, g = jax.value_and_grad(loss_fn)(w)
    u, s = tx.update(g, s)
    return optax.apply_updates(w, u), s, loss
w, s, loss = step(w, tx.init(w))
print(f"loss at step 1: {float(loss):.4f}")
"""


def run_cell(kc, code, timeout=120):
    """Sends code and returns (seconds to the first stream output, seconds to idle)."""
    start = time.monotonic()
    msg_id = kc.execute(code)
    first = None
    deadline = start + timeout
    while True:
        try:
            msg = kc.get_iopub_msg(timeout=max(0.1, deadline - time.monotonic()))
        except queue.Empty:
            raise RuntimeError(f"no reply within {timeout} s")
        if msg.get("parent_header", {}).get("msg_id") != msg_id:
            continue
        kind = msg["msg_type"]
        if kind == "error":
            raise RuntimeError("cell failed: " + " ".join(msg["content"]["traceback"])[-2000:])
        if kind == "stream" and first is None:
            first = time.monotonic() - start
        if kind == "status" and msg["content"]["execution_state"] == "idle":
            if first is None:
                raise RuntimeError("the cell printed nothing")
            return first


def one_kernel(i):
    start = time.monotonic()
    km = KernelManager(kernel_name="python3")
    km.start_kernel()
    kc = km.client()
    try:
        kc.start_channels()
        kc.wait_for_ready(timeout=60)
        sent = time.monotonic()
        cold = (sent - start) + run_cell(kc, CELL.replace("LR", "0.1"))  # start -> first output
        warm = run_cell(kc, CELL.replace("LR", f"0.{i + 2}"))
        return cold, warm
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kernels", type=int, default=3)
    args = parser.parse_args()
    colds, warms = [], []
    for i in range(args.kernels):
        cold, warm = one_kernel(i)
        print(f"ipykernel {i + 1}: cold {cold:.2f} s, warm {warm:.2f} s", file=sys.stderr)
        colds.append(cold)
        warms.append(warm)
    print(json.dumps({"cold": statistics.median(colds), "warm": statistics.median(warms), "colds": colds, "warms": warms}))


if __name__ == "__main__":
    main()
