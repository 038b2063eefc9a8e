"""Targets from names, scripts and numpy callables; errors of Python targets."""

import math

import numpy as np
import pytest

import bootflow
from numpy_targets import manywell_grad, manywell_log_prob


def test_named_targets_take_their_keys():
    t = bootflow.target("phi4", L=4, m2=-4.0, **{"lambda": 8.0})
    assert (t.dim, t.has_grad) == (16, True)
    x = np.zeros((3, 16))
    np.testing.assert_array_equal(t.log_prob(x), np.zeros(3))
    mw = bootflow.target("manywell", dim=8)
    # Four double wells (normaliser 11784.509...) times four standard normals.
    assert mw.dim == 8 and mw.has_sampler
    assert mw.log_z == pytest.approx(4 * (math.log(11784.509265127827) + 0.5 * math.log(2 * math.pi)), rel=1e-12)
    assert "manywell" in bootflow.targets()
    with pytest.raises(bootflow.BootflowError, match="unknown key|unknown field"):
        bootflow.target("manywell", dims=8)
    with pytest.raises(bootflow.BootflowError, match="nope"):
        bootflow.target("nope")


def test_a_script_target_is_recorded_by_its_absolute_path(tmp_path, monkeypatch):
    (tmp_path / "g.rhai").write_text("const DIM = 2; fn log_prob(x) { -0.5 * (x[0] * x[0] + x[1] * x[1]) }")
    monkeypatch.chdir(tmp_path)
    t = bootflow.target("g.rhai")
    assert t.dim == 2
    assert str(tmp_path / "g.rhai") in t.spec_json
    np.testing.assert_allclose(t.log_prob(np.array([[1.0, 2.0]])), [-2.5])


def test_numpy_manywell_gives_the_plugins_bits():
    plugin = bootflow.target("manywell", dim=16)
    numpy = bootflow.target(manywell_log_prob, dim=16, grad=manywell_grad)
    x = plugin.sample(2000, seed=3)
    np.testing.assert_array_equal(numpy.log_prob(x), plugin.log_prob(x))
    lp_n, g_n = numpy.log_prob_grad(x)
    lp_p, g_p = plugin.log_prob_grad(x)
    np.testing.assert_array_equal(lp_n, lp_p)
    np.testing.assert_array_equal(g_n, g_p)


def test_a_callable_is_called_once_per_batch():
    calls = []

    def log_prob(x):
        calls.append(x.shape)
        return -0.5 * np.sum(x * x, axis=1)

    t = bootflow.target(log_prob, dim=3)
    assert not t.has_grad
    t.log_prob(np.ones((500, 3)))
    assert calls == [(500, 3)]
    bootflow.sample(t, method="rwm", chains=4, draws=20, warmup=10, progress=False)
    # One call per transition of all four chains (plus the start points), never one per point.
    assert all(shape == (4, 3) for shape in calls[1:]) and len(calls) <= 1 + 31


def test_a_raising_target_raises_its_own_exception_naming_the_batch():
    class Boom(Exception):
        pass

    seen = []

    def log_prob(x):
        seen.append(len(x))
        if len(seen) == 3:
            raise Boom("bad region")
        return -0.5 * np.sum(x * x, axis=1)

    t = bootflow.target(log_prob, dim=2)
    with pytest.raises(Boom, match="bad region") as info:
        bootflow.sample(t, method="rwm", chains=2, draws=10, warmup=0, progress=False)
    assert any("batch 3 (2 points of dimension 2)" in n for n in info.value.__notes__)
    assert info.traceback[-1].name == "log_prob"
    # The target stays usable.
    seen.clear()
    assert t.log_prob(np.zeros((1, 2)))[0] == 0.0


@pytest.mark.parametrize(
    "returned, message",
    [
        (lambda x: np.zeros(len(x) - 1), r"log_prob\(x\) must have shape \(5,\), got shape \(4,\)"),
        (lambda x: np.zeros((len(x), 1)), r"must have shape \(5,\), got shape \(5, 1\)"),
        (lambda x: np.zeros(len(x), dtype=np.float32), "float64 numpy array of shape \\(5,\\), got ndarray of dtype float32"),
        (lambda x: [0.0] * len(x), "float64 numpy array of shape \\(5,\\), got list"),
        (lambda x: None, "got NoneType"),
    ],
)
def test_a_wrong_shape_or_dtype_is_a_value_error(returned, message):
    t = bootflow.target(returned, dim=2)
    with pytest.raises(ValueError, match=message):
        t.log_prob(np.zeros((5, 2)))


def test_a_wrong_gradient_shape_is_a_value_error():
    t = bootflow.target(lambda x: np.zeros(len(x)), dim=2, grad=lambda x: np.zeros((len(x), 3)))
    with pytest.raises(ValueError, match=r"grad\(x\) must have shape \(5, 2\), got shape \(5, 3\)"):
        t.log_prob_grad(np.zeros((5, 2)))


def test_bad_arguments_are_refused():
    with pytest.raises(TypeError, match="needs dim"):
        bootflow.target(lambda x: x)
    with pytest.raises(TypeError, match="takes no keys"):
        bootflow.target(lambda x: x, dim=2, scale=3)
    with pytest.raises(ValueError, match=r"shape \(n, 2\)"):
        bootflow.target("gaussian", dim=2).log_prob(np.zeros((4, 3)))
