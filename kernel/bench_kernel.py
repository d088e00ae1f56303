"""Times the "Go (GoMLX)" kernel the way a researcher meets it.

For each of N fresh kernels it measures:
  cold: from asking Jupyter for a new kernel to the first output of its first cell,
        a cell that imports mlx and GoMLX and runs one training step;
  warm: from sending a second such cell (changed, so it is compiled again) to its first output.
It prints every measurement, then the median, min and max of each, next to the targets
(issue 11's targets: cold under 2 s, warm under 0.5 s on an idle machine).

Run it with `make bench-kernel` (which sets up the kernel first).
"""

import argparse
import pathlib
import statistics
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent / "tests"))

# kernelclient imports the tests' conftest, which also makes the kernels run offline as in
# the tests (GOPROXY=off, GOTOOLCHAIN=local).
from kernelclient import fresh_kernel  # noqa: E402
from test_kernel import FIRST_CELL  # noqa: E402

TARGETS = {"cold": 2.0, "warm": 0.5}


def warm_cell(i):
    # A different learning rate each time, so GoNB really rebuilds the program.
    return FIRST_CELL.replace("WithLearningRate(0.1)", f"WithLearningRate(0.{i + 2})")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kernels", type=int, default=5, help="how many fresh kernels to time (default 5)")
    args = parser.parse_args()
    if args.kernels < 1:
        parser.error("--kernels must be at least 1")

    times = {"cold": [], "warm": []}
    print(f"{'kernel':>6}  {'cold: start -> 1st output':>26}  {'warm: 2nd cell -> output':>25}  backend")
    for i in range(args.kernels):
        start = time.monotonic()
        with fresh_kernel() as kernel:
            first = kernel.run(FIRST_CELL)
            if first.status != "ok" or first.first_output_at is None:
                sys.exit(f"kernel {i + 1}: the first cell failed: {first}")
            cold_s = first.first_output_at - start
            second = kernel.run(warm_cell(i))
            if second.status != "ok" or second.first_output_s is None:
                sys.exit(f"kernel {i + 1}: the second cell failed: {second}")
        times["cold"].append(cold_s)
        times["warm"].append(second.first_output_s)
        backend = first.stdout.splitlines()[0].split(" (")[0].removeprefix("mlx: running on ")
        print(f"{i + 1:>6}  {cold_s:>24.2f} s  {second.first_output_s:>23.2f} s  {backend}")

    print()
    print(f"{'':>6}  {'median':>8}  {'min':>8}  {'max':>8}  target")
    for name, values in times.items():
        med = statistics.median(values)
        verdict = "met" if med < TARGETS[name] else "MISSED"
        print(f"{name:>6}  {med:>7.2f}s  {min(values):>7.2f}s  {max(values):>7.2f}s  < {TARGETS[name]:.1f} s: {verdict}")


if __name__ == "__main__":
    main()
