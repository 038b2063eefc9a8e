#!/usr/bin/env python3
"""NUTS side by side: bootflow's `nuts` kernel against NumPyro's NUTS on the same models, with the
same numbers of chains, warm-up and kept draws, one CPU core each.

Models (bootflow's as Rhai scripts in scripts/, NumPyro's written here):

* ``eight_schools``: centred eight schools (scripts/eight_schools.rhai).
* ``eight_schools_nc``: the same model non-centred (scripts/eight_schools_noncentred.rhai).
* ``funnel_nc``: Neal's funnel in 10-D, non-centred (scripts/funnel_noncentred.rhai).
* ``gauss100``: a 100-D Gaussian with condition number 1000 (covariance ``Q diag(lambda) Q^T``,
  ``lambda`` geometric from 1 to 1000, ``Q`` a random rotation, numpy seed 0, entries rounded
  to 5 significant digits so both samplers see the same matrix), both with a dense mass matrix
  (bootflow's ``gaussian`` target with ``--kernel-set metric=dense``; NumPyro's
  ``dense_mass=True``).

For each sampler and model the script prints the wall time of sampling (warm-up included;
NumPyro's second run, so its compilation is excluded, and its first run for reference), the
divergent transitions after warm-up, the slowest coordinate's bulk ESS (rank-normalised, as
ArviZ computes it: bootflow's summary.json, ArviZ for NumPyro) and bulk ESS per second.

Usage (from the repository root, after `cargo build --release --workspace`):

    python3 -m venv target/peer-venv && target/peer-venv/bin/pip install numpyro jax arviz
    target/peer-venv/bin/python benches/peer/nuts_bench.py [--chains 8] [--draws 2000] [--warmup 1000]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=1")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ["JAX_ENABLE_X64"] = "1"

import arviz as az  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import numpyro  # noqa: E402
import numpyro.distributions as dist  # noqa: E402
from numpyro.infer import MCMC, NUTS  # noqa: E402

jax.config.update("jax_enable_x64", True)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
Y = np.array([28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0])
SIGMA = np.array([15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0])


def eight_schools():
    mu = numpyro.sample("mu", dist.Normal(0.0, 5.0))
    tau = numpyro.sample("tau", dist.HalfCauchy(5.0))
    with numpyro.plate("J", 8):
        theta = numpyro.sample("theta", dist.Normal(mu, tau))
        numpyro.sample("obs", dist.Normal(theta, SIGMA), obs=Y)


def eight_schools_nc():
    mu = numpyro.sample("mu", dist.Normal(0.0, 5.0))
    tau = numpyro.sample("tau", dist.HalfCauchy(5.0))
    with numpyro.plate("J", 8):
        eta = numpyro.sample("eta", dist.Normal(0.0, 1.0))
        numpyro.sample("obs", dist.Normal(mu + tau * eta, SIGMA), obs=Y)


def funnel_nc():
    numpyro.sample("v", dist.Normal(0.0, 3.0))
    numpyro.sample("z", dist.Normal(jnp.zeros(9), 1.0))


def gauss100_cov():
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.standard_normal((100, 100)))
    lam = 1000.0 ** (np.arange(100) / 99.0)
    cov = (q * lam) @ q.T
    return np.array([[float(f"{v:.5g}") for v in row] for row in (cov + cov.T) / 2])


GAUSS100_COV = gauss100_cov()


def gauss100():
    numpyro.sample("x", dist.MultivariateNormal(jnp.zeros(100), covariance_matrix=jnp.asarray(GAUSS100_COV)))


# name: (NumPyro model, bootflow target arguments, bootflow kernel options, NumPyro NUTS options)
MODELS = {
    "eight_schools": (eight_schools, ["scripts/eight_schools.rhai"], [], {}),
    "eight_schools_nc": (eight_schools_nc, ["scripts/eight_schools_noncentred.rhai"], [], {}),
    "funnel_nc": (funnel_nc, ["scripts/funnel_noncentred.rhai"], [], {}),
    "gauss100": (gauss100, ["gaussian", "--set", "dim=100", "--set",
                            "cov=[" + ",".join("[" + ",".join(f"{v:.5g}" for v in row) + "]" for row in GAUSS100_COV) + "]"],
                 ["--kernel-set", "metric=dense"], {"dense_mass": True}),
}


def numpyro_row(model, options, args):
    mcmc = MCMC(NUTS(model, **options), num_warmup=args.warmup, num_samples=args.draws, num_chains=args.chains,
                chain_method=args.chain_method, progress_bar=False)
    t0 = time.perf_counter()
    mcmc.run(jax.random.PRNGKey(0), extra_fields=("diverging",))
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    mcmc.run(jax.random.PRNGKey(1), extra_fields=("diverging",))
    jax.block_until_ready(mcmc.get_samples())
    second = time.perf_counter() - t0
    div = int(np.asarray(mcmc.get_extra_fields()["diverging"]).sum())
    summary = az.ess(az.from_numpyro(mcmc), method="bulk")
    ess = min(float(np.min(summary[v].values)) for v in summary.data_vars)
    return {"seconds": second, "first_run_seconds": first, "divergences": div, "min_bulk_ess": ess}


def bootflow_row(target, kernel, args):
    exe = os.path.join(ROOT, "target", "release", "bootflow")
    name = os.path.join(ROOT, target[0]) if target[0].endswith(".rhai") else target[0]
    with tempfile.TemporaryDirectory() as out:
        cmd = [exe, "sample", "--target", name, *target[1:], "--method", "nuts", *kernel,
               "--chains", str(args.chains), "--draws", str(args.draws), "--warmup", str(args.warmup),
               "--seed", "1", "--out", out, "--force"]
        env = dict(os.environ, RAYON_NUM_THREADS="1")
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wall = time.perf_counter() - t0
        s = json.load(open(os.path.join(out, "summary.json")))
    ess = min(q["ess_bulk"] for q in s["quantities"].values())
    return {"seconds": s["seconds"], "wall_seconds": wall, "divergences": int(s["tuning"]["divergences"]),
            "min_bulk_ess": ess}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--chains", type=int, default=8)
    p.add_argument("--draws", type=int, default=2000)
    p.add_argument("--warmup", type=int, default=1000)
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--chain-method", default="vectorized", help="NumPyro's chain_method: vectorized or sequential")
    args = p.parse_args()
    print(f"{args.chains} chains x {args.draws} draws after {args.warmup} warm-up, one core each")
    print(f"{'model':<18}{'sampler':<10}{'seconds':>9}{'divergent':>11}{'min bulk ESS':>14}{'ESS/s':>9}")
    for name in args.models.split(","):
        model, target, kernel, options = MODELS[name]
        for sampler, run in (("bootflow", lambda: bootflow_row(target, kernel, args)),
                             ("numpyro", lambda: numpyro_row(model, options, args))):
            row = run()
            print(f"{name:<18}{sampler:<10}{row['seconds']:>9.2f}{row['divergences']:>11}"
                  f"{row['min_bulk_ess']:>14.0f}{row['min_bulk_ess'] / row['seconds']:>9.0f}"
                  + (f"   (first run with compilation {row['first_run_seconds']:.2f} s)" if "first_run_seconds" in row
                     else f"   (process wall {row['wall_seconds']:.2f} s)"))
            sys.stdout.flush()


if __name__ == "__main__":
    main()
