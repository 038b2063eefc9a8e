"""bootflow from Python: normalizing flows and MCMC for hard distributions.

The same engine and run configs as the ``bootflow`` command line, with numpy arrays in and out::

    import bootflow
    t = bootflow.target("manywell", dim=16)
    run = bootflow.train("scripts/manywell16-fab.toml", overrides={"train.steps": 500})
    x, log_q = run.flow.sample(1000, seed=1)
    idata = bootflow.sample(t, method="mis", flow=run.flow, chains=4, draws=1000)

Targets may be plain vectorised Python functions (``log_prob(x: (n, d)) -> (n,)``), called once
per batch; bootflow releases the GIL while it works and takes it back for each batch.
"""

from __future__ import annotations

import json
import math
import os
import sys
import warnings
from typing import Any, Callable, Mapping

import numpy as np

from . import _native
from ._native import BootflowError, Flow, Target

__all__ = [
    "BootflowError",
    "Flow",
    "Run",
    "Target",
    "estimate",
    "load_flow",
    "summary_of",
    "sample",
    "target",
    "targets",
    "train",
]

__version__ = "0.1.0"


def _plain(value: Any) -> Any:
    """JSON-ready form of numpy scalars and arrays and of paths (for configs and keys)."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"{type(value).__name__} is not a config value (use numbers, strings, bools, lists, dicts)")


def _json(value: Any) -> str:
    return json.dumps(value, default=_plain, allow_nan=True)


def target(spec: str | os.PathLike | Callable[[np.ndarray], np.ndarray], dim: int | None = None,
           grad: Callable[[np.ndarray], np.ndarray] | None = None, **params: Any) -> Target:
    """A target density.

    ``spec`` is a registered name (``bootflow.target("phi4", L=8, m2=-4.0, **{"lambda": 8.0})``;
    see :func:`targets`), the path of a ``.rhai`` script, or a Python callable
    ``log_prob(x: ndarray (n, d)) -> ndarray (n,)`` of float64. A callable needs ``dim`` and may come
    with ``grad(x) -> ndarray (n, d)``; it is called once per batch, never per point. An exception it
    raises surfaces at the call that needed it, with a note naming the batch. ``dim`` for a named
    target is its ``dim`` key. Every target takes ``gradient=False`` to hide its gradient.
    """
    return _native.target(spec, _json(params), dim, grad)


def targets() -> dict[str, str]:
    """Every registered target (built in, shipped plugins, ``BOOTFLOW_PLUGIN_PATH``): name -> description."""
    return dict(_native.list_targets())


def load_flow(path: str | os.PathLike) -> Flow:
    """A trained flow from a ``checkpoint.json`` file or a run directory holding one (as the CLI writes)."""
    return _native.load_flow(os.fspath(path))


class _Bars:
    """Progress bars for bootflow's callbacks: tqdm (terminal or notebook) when installed, else a
    line on stderr when it is a terminal, else nothing."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.bars: dict[str, Any] = {}
        self.tqdm = None
        if enabled:
            try:
                from tqdm.auto import tqdm

                self.tqdm = tqdm
            except ImportError:
                self.enabled = sys.stderr.isatty()

    def __call__(self, kind: str, done: int, total: int, info: float | None) -> None:
        if not self.enabled:
            return
        if self.tqdm is not None:
            bar = self.bars.get(kind)
            if bar is None:
                bar = self.bars[kind] = self.tqdm(total=total, desc=kind, unit="step" if kind == "train" else "draw")
            bar.update(done - bar.n)
            if info is not None and math.isfinite(info):
                bar.set_postfix(loss=f"{info:.4g}", refresh=False)
            if done >= total:
                bar.close()
        else:
            loss = f"  loss {info:.4g}" if info is not None else ""
            end = "\n" if done >= total else ""
            sys.stderr.write(f"\r{kind}: {done}/{total}{loss}{end}")
            sys.stderr.flush()

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()


def _metrics_table(columns: dict[str, list]) -> Any:
    """Logged columns as float arrays (NaN where a step logged nothing), or a pandas DataFrame."""
    arrays = {k: np.array([np.nan if v is None else v for v in col], dtype=float) for k, col in columns.items()}
    try:
        import pandas as pd
    except ImportError:
        return arrays
    return pd.DataFrame(arrays)


class Run:
    """A finished (or interrupted) training run.

    Attributes: ``flow`` (the trained :class:`Flow`), ``metrics`` (the columns of ``metrics.csv``:
    a pandas DataFrame when pandas is installed, else a dict of arrays), ``evals`` (the same for
    ``eval.csv``), ``summary`` (dict: steps, skipped_steps, seconds, n_params, final_loss,
    interrupted), ``out`` (the run directory or None) and ``interrupted`` (Ctrl-C stopped it; the
    checkpoint holds the last completed step).
    """

    def __init__(self, flow: Flow, metrics: Any, evals: Any, summary: dict, out: str | None):
        self.flow = flow
        self.metrics = metrics
        self.evals = evals
        self.summary = summary
        self.out = out
        self.interrupted = bool(summary.get("interrupted"))

    def __repr__(self) -> str:
        s = self.summary
        return f"bootflow.Run(steps={s['steps']}, seconds={s['seconds']:.1f}, out={self.out!r})"


def train(config: Mapping[str, Any] | str | os.PathLike, target: Target | None = None,
          out: str | os.PathLike | None = None, overrides: Mapping[str, Any] | None = None,
          progress: bool = True) -> Run:
    """Trains a flow as ``bootflow train`` does.

    ``config`` is a run config: a dict with the TOML file's tables (``seed``, ``target``, ``flow``,
    ``objective``, ``train``) or the path of such a file. ``overrides`` maps dotted keys to values,
    like the CLI's ``--set`` (``{"train.steps": 200}``). ``target`` replaces the config's
    ``[target]`` (e.g. a Python callable). With ``out`` the run directory is written exactly as the
    CLI writes it (``config.toml``, ``metrics.csv``, ``checkpoint.json``, ``summary.json``); an
    existing run there is refused. Ctrl-C stops after the current step with a checkpoint and returns
    the run with ``interrupted`` set (and a warning).
    """
    is_path = isinstance(config, (str, os.PathLike))
    cfg = os.fspath(config) if is_path else _json(dict(config))
    bars = _Bars(progress)
    try:
        flow, metrics, evals, summary, interrupted = _native.train(
            cfg, is_path, _json(dict(overrides or {})), target, None if out is None else os.fspath(out), bars
        )
    finally:
        bars.close()
    summary = json.loads(summary)
    if interrupted:
        where = f"; checkpoint in {os.fspath(out)}" if out is not None else ""
        warnings.warn(f"training interrupted at step {summary['steps']}{where}", RuntimeWarning, stacklevel=2)
    return Run(flow, _metrics_table(json.loads(metrics)), _metrics_table(json.loads(evals)), summary,
               None if out is None else os.fspath(out))


def sample(target: Target | str, method: str = "hmc", flow: Flow | None = None, chains: int = 4,
           draws: int = 1000, warmup: int = 500, seed: int = 0, *, out: str | os.PathLike | None = None,
           init_scale: float = 1.0, ais_steps: int = 8, progress: bool = True, **kernel_options: Any) -> Any:
    """Runs MCMC chains on ``target``.

    ``method``: ``"hmc"``, ``"nuts"`` or ``"rwm"`` (kernel chains: ``warmup`` adaptation
    transitions, then ``draws``), ``"mis"`` (independent Metropolis-Hastings with ``flow`` as
    proposal; no warm-up), ``"mis-ais"`` (each proposal refined by ``ais_steps`` annealing steps),
    ``"laplace"`` (independent draws from the Laplace approximation, weighted against the target) or
    ``"flow-mcmc"`` (NUTS moves and global moves from a flow trained on the chains during a warm-up
    of at least 100 transitions, then frozen). ``kernel_options`` go to
    the kernel (``n_leapfrog=20``, ``step_size=0.05``, ...). With ``out`` the chain files and
    ``summary.json`` are written as ``bootflow sample`` writes them.

    Returns an ``arviz.InferenceData`` when ArviZ is installed: posterior ``x`` of shape
    (chain, draw, dim), each observable of the target as its own variable, ``lp`` and
    ``acceptance_rate`` in ``sample_stats``, and bootflow's summary (JSON) in the posterior's
    ``bootflow_summary`` attribute. Without ArviZ, a dict with ``x``, ``observables``, ``lp``,
    ``acceptance_rate`` and ``summary``.
    """
    if isinstance(target, (str, os.PathLike)):
        target = globals()["target"](target)
    if method in ("mis", "mis-ais"):
        warmup = 0
    bars = _Bars(progress)
    try:
        summary, x, observables, lp, acc = _native.sample(
            target, method, flow, chains, draws, warmup, seed, float(init_scale), _json(kernel_options),
            ais_steps, None if out is None else os.fspath(out), bars,
        )
    finally:
        bars.close()
    try:
        import arviz as az
    except ImportError:
        return {"x": x, "observables": dict(observables), "lp": lp, "acceptance_rate": acc,
                "summary": json.loads(summary)}
    posterior = {"x": x}
    posterior.update(observables)
    idata = az.from_dict(posterior=posterior, sample_stats={"lp": lp, "acceptance_rate": acc}, dims={"x": ["x_dim"]})
    idata.posterior.attrs.update({"bootflow_summary": summary, "bootflow_method": method})
    return idata


def summary_of(result: Any) -> dict:
    """bootflow's own summary (``summary.json``) of what :func:`sample` returned."""
    if isinstance(result, dict):
        return result["summary"]
    return json.loads(result.posterior.attrs["bootflow_summary"])


def estimate(flow: Flow, target: Target | None = None, samples: int = 100_000, seed: int = 0,
             ais_steps: int | None = None) -> dict:
    """The figures of ``bootflow estimate`` for ``flow``: ESS, log Z (with standard error, and the
    exact value when known), forward ESS and test-set figures when the target has exact samples,
    and AIS figures for FAB runs (``ais_steps``: intermediate distributions; default the run's).
    ``target`` defaults to the one the flow's run directory names."""
    return json.loads(_native.estimate(flow, target, samples, seed, ais_steps))


