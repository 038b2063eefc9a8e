"""Per-point cost of a numpy-defined Many Well 32-D target (value and gradient, batches of 1024):
called directly from Python, called through bootflow, and bootflow's own plugin target.

    python python/benches/target_overhead.py [--batch 1024] [--repeats 500] [--rounds 15]

Prints one row per way and the overhead bootflow adds to the bare numpy call. "As bootflow
calls it" is what training and sampling pay per batch (timed inside bootflow by
`Target.time_eval`): the batch is copied into a numpy array, the two numpy functions are called
with the GIL taken back, their results are checked and copied out. "Round trip from Python"
(`Target.log_prob_grad`) adds the copy of the caller's array into bootflow and back.
"""

import argparse
import pathlib
import sys
import time

import numpy as np

import bootflow

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tests"))
from numpy_targets import manywell_grad, manywell_log_prob  # noqa: E402


def timed_rounds(ways, x, repeats, rounds):
    """Median over `rounds` of the time per point of `repeats` calls, for each way; the ways take
    turns within each round, so a change in the machine's load touches all of them alike."""
    for way in ways.values():
        way(x, 20)
    times = {name: [] for name in ways}
    for _ in range(rounds):
        for name, way in ways.items():
            times[name].append(way(x, repeats) / len(x) * 1e9)
    return {name: float(np.median(t)) for name, t in times.items()}


def from_python(fn):
    """Seconds per call of `fn(x)`, timed in Python."""

    def way(x, repeats):
        t0 = time.perf_counter()
        for _ in range(repeats):
            fn(x)
        return (time.perf_counter() - t0) / repeats

    return way


def inside(target):
    """Seconds per call as bootflow calls the target, timed by bootflow (`Target.time_eval`)."""
    return lambda x, repeats: target.time_eval(x, repeats=repeats)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--repeats", type=int, default=500)
    ap.add_argument("--rounds", type=int, default=15)
    args = ap.parse_args()
    plugin = bootflow.target("manywell", dim=32)
    numpy_target = bootflow.target(manywell_log_prob, dim=32, grad=manywell_grad)
    x = plugin.sample(args.batch, seed=0)

    def direct(x):
        return manywell_log_prob(x), manywell_grad(x)

    ways = {
        "numpy, called directly": from_python(direct),
        "numpy, as bootflow calls it": inside(numpy_target),
        "numpy, round trip from Python": from_python(numpy_target.log_prob_grad),
        "plugin, as bootflow calls it": inside(plugin),
        "plugin, round trip from Python": from_python(plugin.log_prob_grad),
    }
    rows = list(timed_rounds(ways, x, args.repeats, args.rounds).items())
    print(f"Many Well 32-D, value and gradient, batches of {args.batch}: median of {args.rounds} rounds of "
          f"{args.repeats} calls, the ways taking turns")
    print(f"{'way':<32}{'ns per point':>14}")
    for name, ns in rows:
        print(f"{name:<32}{ns:>14.1f}")
    for k, what in ((1, "as bootflow calls it"), (2, "round trip from Python")):
        print(f"bootflow's overhead over the bare numpy call, {what}: {(rows[k][1] / rows[0][1] - 1) * 100:+.1f} %")


if __name__ == "__main__":
    main()
