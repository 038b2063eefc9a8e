#!/usr/bin/env python3
"""Time RealNVP training steps in PyTorch, to pair with bootflow's `peer_steps` benchmark.

Each timed step is the one `cargo bench -p bootflow-realnvp --bench peer_steps` runs:

* ``kl``:  one reverse-KL step by reparameterisation (estimator g3) on Many Well, then Adam.
* ``fab``: one FAB iteration in the form of the first FAB paper (Midgley et al., "Bootstrap Your
  Flow", 2021): flow samples are moved by AIS towards p~ through 2 intermediate distributions
  (linear betas, one HMC trajectory of 5 leapfrog steps of size 0.1 each), then the surrogate
  ``LSE(log w + log p~(x) - log q(x))`` with x and w held fixed is differentiated (log q by the
  inverse pass) and Adam steps.

The flow: standard-normal base, NL affine couplings on alternating halves of the coordinates,
each conditioner an MLP (frozen half) -> H -> H -> (log-scale, shift) with ReLU, log-scale
bounded by tanh, last layer zero-initialised. Adam with lr 1e-4.

Usage (the shape of the original peer script, so existing commands keep working):

    [B=batch] [H=width] [NL=couplings] [D=dim] python3 torch_step_bench.py kl|fab [f64|f32] [THREADS]
    python3 torch_step_bench.py all [f64|f32] [THREADS]      # the six peer_steps rows

Defaults: kl D=16 NL=8 H=256 B=1024; fab D=16 NL=10 H=160 B=1024; f32; 2 threads; 3 warm-up
steps, then the median and minimum of 15 timed steps (``--warmup``, ``--repeat``). Set
``DEVICE=cuda`` to run on a GPU (steps are synchronised before and after timing).
"""

import argparse
import math
import os
import statistics
import sys
import time

try:
    import torch
    from torch import nn
except ImportError:  # keep the message short: this is the usual first-run failure
    sys.exit("torch_step_bench.py needs PyTorch: python3 -m venv .venv && .venv/bin/pip install torch")

# Many Well: -(A w + B w^2 + C w^4) for each double-well coordinate w, -g^2/2 for each Gaussian g.
MW_A, MW_B, MW_C = -0.5, -6.0, 1.0

# FAB iteration of the first paper, as peer_steps runs it.
AIS_INTERMEDIATE = 2
LEAPFROG_STEPS = 5
LEAPFROG_SIZE = 0.1
LEARNING_RATE = 1e-4

# name, step kind, dim, couplings, hidden width, batch -- the rows of peer_steps.
ROWS = [
    ("kl-d16-b1024", "kl", 16, 8, 256, 1024),
    ("fab-d16-b1024", "fab", 16, 10, 160, 1024),
    ("kl-d16-b128", "kl", 16, 8, 256, 128),
    ("fab-d16-b128", "fab", 16, 10, 256, 128),
    ("kl-d2-b128", "kl", 2, 15, 80, 128),
    ("fab-d2-b128", "fab", 2, 15, 80, 128),
]


def many_well(x):
    """Unnormalised log-density of Many Well for a (batch, dim) tensor, dim even."""
    if x.shape[-1] % 2 != 0:
        raise ValueError(f"Many Well needs an even dimension, got {x.shape[-1]}")
    well = x[..., 0::2]
    gauss = x[..., 1::2]
    per_well = MW_A * well + MW_B * well.pow(2) + MW_C * well.pow(4)
    return -per_well.sum(-1) - 0.5 * gauss.pow(2).sum(-1)


class HalfCoupling(nn.Module):
    """Affine coupling: one half of the coordinates conditions an affine map of the other.

    The halves are contiguous (first dim // 2 coordinates, then the rest); `swap` chooses which
    one is frozen. Slicing and one concatenation keep the op count at its minimum, so the
    PyTorch side pays no extra per-op overhead on the small rows.
    """

    def __init__(self, dim, hidden, swap):
        super().__init__()
        cut = dim // 2
        self.swap = swap
        lower, upper = slice(0, cut), slice(cut, dim)
        self.frozen, self.active = (upper, lower) if swap else (lower, upper)
        n_frozen, self.n_active = (dim - cut, cut) if swap else (cut, dim - cut)
        last = nn.Linear(hidden, 2 * self.n_active)
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        self.conditioner = nn.Sequential(
            nn.Linear(n_frozen, hidden), nn.ReLU(),
            nn.Linear(hidden, hidden), nn.ReLU(),
            last,
        )

    def _scale_shift(self, x_frozen):
        out = self.conditioner(x_frozen)
        log_scale = torch.tanh(out[:, : self.n_active])
        return log_scale, out[:, self.n_active:]

    def _assemble(self, x_frozen, y_active):
        parts = [y_active, x_frozen] if self.swap else [x_frozen, y_active]
        return torch.cat(parts, dim=1)

    def forward(self, z):
        """Base side to data side: returns (x, log|det dx/dz|)."""
        z_frozen, z_active = z[:, self.frozen], z[:, self.active]
        log_scale, shift = self._scale_shift(z_frozen)
        x_active = z_active * log_scale.exp() + shift
        return self._assemble(z_frozen, x_active), log_scale.sum(1)

    def inverse(self, x):
        """Data side to base side: returns (z, log|det dz/dx|)."""
        x_frozen, x_active = x[:, self.frozen], x[:, self.active]
        log_scale, shift = self._scale_shift(x_frozen)
        z_active = (x_active - shift) * (-log_scale).exp()
        return self._assemble(x_frozen, z_active), -log_scale.sum(1)


class RealNVP(nn.Module):
    def __init__(self, dim, hidden, couplings):
        super().__init__()
        self.dim = dim
        self.couplings = nn.ModuleList(HalfCoupling(dim, hidden, i % 2 == 1) for i in range(couplings))

    def base_log_prob(self, z):
        return -0.5 * z.pow(2).sum(1) - 0.5 * self.dim * math.log(2.0 * math.pi)

    def sample_with_log_q(self, n):
        z = torch.randn(n, self.dim)
        log_q = self.base_log_prob(z)
        x = z
        for layer in self.couplings:
            x, log_det = layer(x)
            log_q = log_q - log_det
        return x, log_q

    def log_q(self, x):
        total_log_det = torch.zeros(x.shape[0])
        z = x
        for layer in reversed(self.couplings):
            z, log_det = layer.inverse(z)
            total_log_det = total_log_det + log_det
        return self.base_log_prob(z) + total_log_det


def reverse_kl_step(flow, optimiser, batch):
    optimiser.zero_grad(set_to_none=True)
    x, log_q = flow.sample_with_log_q(batch)
    loss = torch.mean(log_q - many_well(x))
    loss.backward()
    optimiser.step()


def _annealed_log_density(flow, x, beta):
    return (1.0 - beta) * flow.log_q(x) + beta * many_well(x)


def _value_and_grad(flow, x, beta):
    x = x.detach().requires_grad_(True)
    value = _annealed_log_density(flow, x, beta)
    (grad,) = torch.autograd.grad(value.sum(), x)
    return value.detach(), grad


def hmc_transition(flow, x, beta):
    """One HMC trajectory (unit mass) leaving (1 - beta) log q + beta log p~ invariant."""
    value0, grad = _value_and_grad(flow, x, beta)
    momentum0 = torch.randn_like(x)
    position, momentum = x, momentum0
    for _ in range(LEAPFROG_STEPS):
        momentum = momentum + 0.5 * LEAPFROG_SIZE * grad
        position = position + LEAPFROG_SIZE * momentum
        value1, grad = _value_and_grad(flow, position, beta)
        momentum = momentum + 0.5 * LEAPFROG_SIZE * grad
    # log of the acceptance ratio: -H(new) + H(old), H = -log density + |p|^2 / 2
    log_ratio = (value1 - 0.5 * momentum.pow(2).sum(1)) - (value0 - 0.5 * momentum0.pow(2).sum(1))
    accept = torch.log(torch.rand(x.shape[0])) < log_ratio
    return torch.where(accept.unsqueeze(1), position, x).detach()


def fab_step(flow, optimiser, batch):
    with torch.no_grad():
        x, _ = flow.sample_with_log_q(batch)
    betas = torch.linspace(0.0, 1.0, AIS_INTERMEDIATE + 2).tolist()
    log_w = torch.zeros(batch)
    for j in range(1, len(betas)):
        with torch.no_grad():
            log_w = log_w + (betas[j] - betas[j - 1]) * (many_well(x) - flow.log_q(x))
        if j < len(betas) - 1:
            x = hmc_transition(flow, x, betas[j])
    optimiser.zero_grad(set_to_none=True)
    with torch.no_grad():
        log_p = many_well(x)
    loss = torch.logsumexp(log_w + log_p - flow.log_q(x), dim=0)
    loss.backward()
    optimiser.step()


STEPS = {"kl": reverse_kl_step, "fab": fab_step}


def time_steps(kind, dim, couplings, hidden, batch, warmup, repeat):
    """Median and minimum milliseconds of `repeat` steps after `warmup` untimed ones."""
    torch.manual_seed(0)
    flow = RealNVP(dim, hidden, couplings)
    optimiser = torch.optim.Adam(flow.parameters(), lr=LEARNING_RATE)
    step = STEPS[kind]
    on_cuda = os.environ.get("DEVICE", "").startswith("cuda")
    sync = torch.cuda.synchronize if on_cuda else (lambda: None)
    for _ in range(warmup):
        step(flow, optimiser, batch)
    elapsed = []
    for _ in range(max(repeat, 1)):
        sync()
        start = time.perf_counter()
        step(flow, optimiser, batch)
        sync()
        elapsed.append(1e3 * (time.perf_counter() - start))
    return statistics.median(elapsed), min(elapsed)


def env_int(name, default):
    value = os.environ.get(name)
    return default if value in (None, "") else int(value)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", nargs="?", default="kl", choices=["kl", "fab", "all"])
    parser.add_argument("precision", nargs="?", default="f32", choices=["f32", "f64"])
    parser.add_argument("threads", nargs="?", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first (default 3)")
    parser.add_argument("--repeat", type=int, default=15, help="timed steps (default 15)")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    dtype = torch.float64 if args.precision == "f64" else torch.float32
    torch.set_default_dtype(dtype)
    if os.environ.get("DEVICE"):
        torch.set_default_device(os.environ["DEVICE"])
    threads = torch.get_num_threads()

    if args.mode == "all":
        print(f"{'row':<16} {'median_ms':>10} {'min_ms':>10}   "
              f"(torch {torch.__version__}, {threads} threads, {args.repeat} timed steps, {args.precision})")
        for name, kind, dim, couplings, hidden, batch in ROWS:
            median, fastest = time_steps(kind, dim, couplings, hidden, batch, args.warmup, args.repeat)
            print(f"{name:<16} {median:>10.1f} {fastest:>10.1f}", flush=True)
        return

    kind = args.mode
    dim = env_int("D", 16)
    batch = env_int("B", 1024)
    hidden = env_int("H", 256 if kind == "kl" else 160)
    couplings = env_int("NL", 8 if kind == "kl" else 10)
    median, fastest = time_steps(kind, dim, couplings, hidden, batch, args.warmup, args.repeat)
    print(f"{kind} D={dim} B={batch} H={hidden} NL={couplings} {dtype} threads={threads} "
          f"median_ms={median:.1f} min_ms={fastest:.1f}")


if __name__ == "__main__":
    main()
