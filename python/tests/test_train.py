"""Training from Python: the CLI's results bit for bit, numpy targets, run directories, Ctrl-C."""

import json
import os
import signal
import subprocess
import threading

import numpy as np
import pytest

import bootflow
from numpy_targets import manywell_grad, manywell_log_prob

# A small FAB run with a spline flow (plugin layers) and a replay buffer on Many Well 4-D.
SMALL = """seed = 5
[target]
name = "manywell"
dim = 4
[flow]
base_std = 1.0
layers = [{ type = "spline", couplings = 2, bins = 6, bound = 4.0, hidden = [16] }]
[objective]
name = "fab"
form = "p2q"
batch = 64
n_intermediate = 2
kernel = "hmc"
kernel_config = { n_leapfrog = 3, step_size = 0.3, target_accept = 0.65, adapt = "simple" }
adapt = true
buffer = { size = 2048, min = 256, batches_per_ais = 4, max_w_adjust = 10.0 }
[train]
steps = 40
lr = 3e-4
clip_norm = 100.0
log_every = 5
"""

# Many Well 16-D, FAB with buffer: the figure the numpy target must match.
MANYWELL16 = {
    "seed": 3,
    "target": {"name": "manywell", "dim": 16},
    "flow": {"base_std": 1.0, "layers": [{"type": "spline", "couplings": 4, "bins": 8, "bound": 4.0, "hidden": [32, 32]}]},
    "objective": {
        "name": "fab", "form": "p2q", "batch": 256, "n_intermediate": 2, "kernel": "hmc",
        "kernel_config": {"n_leapfrog": 5, "step_size": 0.3, "target_accept": 0.65, "adapt": "simple"},
        "adapt": True, "buffer": {"size": 8192, "min": 1024, "batches_per_ais": 4, "max_w_adjust": 10.0},
    },
    "train": {"steps": 200, "lr": 1e-3, "clip_norm": 100.0, "log_every": 50},
}


def checkpoint_params(run_dir):
    with open(os.path.join(run_dir, "checkpoint.json")) as f:
        return np.array(json.load(f)["params"])


def test_the_same_config_and_seed_give_the_clis_parameters_bit_for_bit(tmp_path, cli):
    config = tmp_path / "small.toml"
    config.write_text(SMALL)
    subprocess.run([cli, "train", config, "--out", tmp_path / "cli", "--set", "train.steps=30"], check=True,
                   capture_output=True)
    run = bootflow.train(config, out=tmp_path / "py", overrides={"train.steps": 30}, progress=False)
    from_cli = checkpoint_params(tmp_path / "cli")
    assert from_cli.size == run.flow.n_params > 0
    np.testing.assert_array_equal(run.flow.params, from_cli)
    np.testing.assert_array_equal(checkpoint_params(tmp_path / "py"), from_cli)
    # The same run from a dict, without a directory.
    import tomllib

    again = bootflow.train(tomllib.loads(SMALL), overrides={"train.steps": 30}, progress=False)
    np.testing.assert_array_equal(again.flow.params, from_cli)
    # The Python run directory is the CLI's: it writes the same files, and the CLI reads them.
    for name in ("config.toml", "metrics.csv", "checkpoint.json", "summary.json"):
        assert (tmp_path / "py" / name).exists(), name
    est = subprocess.run([cli, "estimate", "--flow", tmp_path / "py", "--samples", "4000", "--json"], check=True,
                         capture_output=True, text=True)
    from_cli_estimate = json.loads(est.stdout)
    ours = bootflow.estimate(bootflow.load_flow(tmp_path / "py"), samples=4000)
    assert ours["ess"] == from_cli_estimate["ess"] and ours["log_z"] == from_cli_estimate["log_z"]


def test_run_objects_hold_the_flow_metrics_and_summary(tmp_path):
    run = bootflow.train(
        {"seed": 1, "target": {"name": "gaussian", "dim": 2}, "flow": {"layers": [{"type": "affine"}]},
         "objective": {"name": "kl", "batch": 64}, "train": {"steps": 60, "lr": 0.05, "log_every": 10}},
        progress=False,
    )
    # One affine layer (4 parameters) and the cholesky layer flow.init fits by default (5).
    assert run.summary["steps"] == 60 and run.summary["n_params"] == 9 and not run.interrupted
    assert run.summary["flow_init"].startswith("laplace at the mode")
    steps = np.asarray(run.metrics["step"])
    np.testing.assert_array_equal(steps, np.arange(10, 61, 10))
    assert np.isfinite(np.asarray(run.metrics["loss"])).all()
    x, log_q = run.flow.sample(500, seed=2)
    assert x.shape == (500, 2) and log_q.shape == (500,)
    np.testing.assert_allclose(run.flow.log_q(x), log_q, rtol=1e-12, atol=1e-12)
    # Saved and read back, the flow is the same.
    path = run.flow.save(tmp_path / "saved")
    loaded = bootflow.load_flow(path)
    np.testing.assert_array_equal(loaded.params, run.flow.params)
    np.testing.assert_array_equal(loaded.sample(10, seed=4)[0], run.flow.sample(10, seed=4)[0])
    with pytest.raises(TypeError, match="needs target="):
        bootflow.estimate(loaded)
    est = bootflow.estimate(loaded, target=bootflow.target("gaussian", dim=2), samples=2000)
    assert 0.0 < est["ess"] <= 1.0


def test_a_used_run_directory_is_refused(tmp_path):
    config = tmp_path / "small.toml"
    config.write_text(SMALL)
    bootflow.train(config, out=tmp_path / "run", overrides={"train.steps": 5}, progress=False)
    before = (tmp_path / "run" / "checkpoint.json").read_bytes()
    with pytest.raises(FileExistsError, match="already holds a run"):
        bootflow.train(config, out=tmp_path / "run", overrides={"train.steps": 5}, progress=False)
    assert (tmp_path / "run" / "checkpoint.json").read_bytes() == before


def test_bad_configs_name_the_key():
    with pytest.raises(bootflow.BootflowError, match="stepz"):
        bootflow.train(SMALL_DICT(), overrides={"train.stepz": 3}, progress=False)
    with pytest.raises(bootflow.BootflowError, match="No such file|reading"):
        bootflow.train("/nonexistent/config.toml", progress=False)


def SMALL_DICT():
    import tomllib

    return tomllib.loads(SMALL)


def test_a_numpy_manywell_trains_with_fab_to_the_plugins_flow_ess():
    plugin = bootflow.train(MANYWELL16, progress=False)
    numpy_target = bootflow.target(manywell_log_prob, dim=16, grad=manywell_grad)
    numpy_run = bootflow.train(MANYWELL16, target=numpy_target, progress=False)
    assert numpy_run.summary["steps"] == plugin.summary["steps"] == 200
    exact = bootflow.target("manywell", dim=16)
    # Flow ESS of each flow over five evaluation seeds; the spread gives the standard error.
    ess = {name: np.array([bootflow.estimate(r.flow, target=exact, samples=20000, seed=s)["ess"] for s in range(5)])
           for name, r in (("plugin", plugin), ("numpy", numpy_run))}
    se = np.hypot(ess["plugin"].std(ddof=1), ess["numpy"].std(ddof=1)) / np.sqrt(5)
    assert abs(ess["plugin"].mean() - ess["numpy"].mean()) <= se, (ess, se)
    assert ess["plugin"].mean() > 0.05
    # The numpy target gives the plugin's bits, so the two trainings are the same run.
    np.testing.assert_array_equal(numpy_run.flow.params, plugin.flow.params)


def test_ctrl_c_stops_training_with_a_checkpoint_at_the_step_it_stopped(tmp_path):
    config = tmp_path / "small.toml"
    config.write_text(SMALL)
    # Python ignores SIGINT when its parent did (a job started with `&`); Ctrl-C is the default handler.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    timer = threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    try:
        with pytest.warns(RuntimeWarning, match="training interrupted at step"):
            run = bootflow.train(config, out=tmp_path / "run",
                                 overrides={"train.steps": 1_000_000, "train.checkpoint_every": 0}, progress=False)
    finally:
        timer.cancel()
        signal.signal(signal.SIGINT, previous)
    assert run.interrupted
    steps = run.summary["steps"]
    assert 0 < steps < 1_000_000
    with open(tmp_path / "run" / "checkpoint.json") as f:
        assert json.load(f)["step"] == steps
    np.testing.assert_array_equal(checkpoint_params(tmp_path / "run"), run.flow.params)
