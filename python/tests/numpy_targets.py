"""Targets written as plain numpy functions, for the tests, the benchmark and the README example.

``manywell_log_prob`` / ``manywell_grad`` are bootflow's Many Well (dim/2 double wells
exp(-(a x^4 + b x^2 + c x)) with a = 1, b = -6, c = -0.5, each times N(0, 1)), written with the
plugin's order of floating-point operations so that both give the same bits.
"""

import numpy as np

A, B, C = -0.5, -6.0, 1.0


def manywell_log_prob(x: np.ndarray) -> np.ndarray:
    a, b = x[:, 0::2], x[:, 1::2]
    x2 = a * a
    terms = -(A * a + B * x2 + C * x2 * x2) - 0.5 * b * b
    # Summed pair by pair, in order, as the plugin sums.
    total = terms[:, 0].copy()
    for k in range(1, terms.shape[1]):
        total += terms[:, k]
    return total


def manywell_grad(x: np.ndarray) -> np.ndarray:
    a, b = x[:, 0::2], x[:, 1::2]
    g = np.empty_like(x)
    g[:, 0::2] = -(A + 2.0 * B * a + 4.0 * C * a * a * a)
    g[:, 1::2] = -b
    return g
