"""Sampling from Python: ArviZ InferenceData whose diagnostics are bootflow's, the CLI's chains, MIS."""

import json
import subprocess
import sys

import arviz as az
import numpy as np
import pytest

import bootflow


def test_inference_data_has_the_draws_and_bootflows_own_diagnostics():
    t = bootflow.target("phi4", L=3, m2=-4.0, **{"lambda": 8.0})
    idata = bootflow.sample(t, method="hmc", chains=4, draws=300, warmup=200, seed=7, progress=False)
    post = idata.posterior
    assert post["x"].shape == (4, 300, 9)
    for name in t.observable_names:
        assert post[name].shape == (4, 300), name
    assert idata.sample_stats["lp"].shape == (4, 300)
    acc = idata.sample_stats["acceptance_rate"].values
    assert ((acc >= 0) & (acc <= 1)).all()
    summary = bootflow.summary_of(idata)
    rhat, ess = az.rhat(idata), az.ess(idata, method="bulk")
    for k in range(9):
        q = summary["quantities"][f"x.{k + 1}"]
        np.testing.assert_allclose(rhat["x"].values[k], q["rhat"], rtol=1e-12)
        np.testing.assert_allclose(ess["x"].values[k], q["ess_bulk"], rtol=1e-12)
    for name in t.observable_names:
        q = summary["quantities"][name]
        np.testing.assert_allclose(rhat[name].values, q["rhat"], rtol=1e-12)
        np.testing.assert_allclose(ess[name].values, q["ess_bulk"], rtol=1e-12)
        np.testing.assert_allclose(post[name].values.mean(), q["mean"], rtol=1e-12)


def test_the_same_request_gives_the_clis_chains(tmp_path, cli):
    args = dict(chains=3, draws=150, warmup=100, seed=4)
    subprocess.run([cli, "sample", "--target", "manywell", "--set", "dim=4", "--method", "hmc", "--chains", "3",
                    "--draws", "150", "--warmup", "100", "--seed", "4", "--kernel-set", "n_leapfrog=7",
                    "--out", tmp_path / "cli"], check=True, capture_output=True)
    ours = bootflow.sample(bootflow.target("manywell", dim=4), method="hmc", n_leapfrog=7, out=tmp_path / "py",
                           progress=False, **args)
    with open(tmp_path / "cli" / "summary.json") as f:
        from_cli = json.load(f)
    summary = bootflow.summary_of(ours)
    assert summary["quantities"] == from_cli["quantities"]
    assert summary["acceptance"] == from_cli["acceptance"]
    for c in (1, 2, 3):
        assert (tmp_path / "py" / f"chain_{c}.csv").exists()
    with pytest.raises(FileExistsError, match="already holds files"):
        bootflow.sample(bootflow.target("manywell", dim=4), out=tmp_path / "py", progress=False, **args)


def test_mis_with_a_trained_flow_and_estimates():
    run = bootflow.train(
        {"seed": 2, "target": {"name": "gaussian", "dim": 2}, "flow": {"layers": [{"type": "affine"}]},
         "objective": {"name": "kl", "batch": 128}, "train": {"steps": 150, "lr": 0.05, "log_every": 50}},
        progress=False,
    )
    t = bootflow.target("gaussian", dim=2)
    idata = bootflow.sample(t, method="mis", flow=run.flow, chains=2, draws=500, seed=1, progress=False)
    assert idata.posterior["x"].shape == (2, 500, 2)
    summary = bootflow.summary_of(idata)
    # An affine flow fits a Gaussian: nearly every proposal is accepted.
    assert summary["acceptance"] > 0.9 and summary["importance"]["ess"] > 0.9
    est = bootflow.estimate(run.flow, target=t, samples=5000, seed=3)
    assert est["ess"] > 0.9 and abs(est["log_z"] - est["log_z_exact"]) < 5 * est["log_z_se"] + 1e-3
    with pytest.raises(bootflow.BootflowError, match="needs --flow"):
        bootflow.sample(t, method="mis", progress=False)


def test_without_arviz_sample_returns_a_dict(monkeypatch):
    monkeypatch.setitem(sys.modules, "arviz", None)
    out = bootflow.sample(bootflow.target("gaussian", dim=2), chains=2, draws=50, warmup=20, progress=False)
    assert out["x"].shape == (2, 50, 2) and out["lp"].shape == (2, 50)
    assert out["summary"]["chains"] == 2


def test_progress_goes_to_the_callback_bars(capsys):
    bootflow.sample(bootflow.target("gaussian", dim=2), chains=2, draws=2000, warmup=100, progress=True)
    err = capsys.readouterr().err
    assert "draws" in err and "4000/4000" in err


def test_flow_mcmc_gives_the_clis_chains(tmp_path, cli):
    sets = ["--set", "means=[[-8.0, 0.0], [8.0, 0.0]]", "--set", "weights=[0.3, 0.7]"]
    subprocess.run([cli, "sample", "--target", "mixture", *sets, "--method", "flow-mcmc", "--chains", "4",
                    "--draws", "200", "--warmup", "200", "--seed", "3", "--init-scale", "6",
                    "--out", tmp_path / "cli"], check=True, capture_output=True)
    target = bootflow.target("mixture", means=[[-8.0, 0.0], [8.0, 0.0]], weights=[0.3, 0.7])
    ours = bootflow.sample(target, method="flow-mcmc", chains=4, draws=200, warmup=200, seed=3, init_scale=6.0,
                           progress=False)
    with open(tmp_path / "cli" / "summary.json") as f:
        from_cli = json.load(f)
    summary = bootflow.summary_of(ours)
    assert summary["quantities"] == from_cli["quantities"]
    assert summary["flow_mcmc"]["global_accept"] == from_cli["flow_mcmc"]["global_accept"] > 0.2
