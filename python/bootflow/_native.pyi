"""Type stubs of bootflow's native module (the public API is the `bootflow` package)."""

from os import PathLike
from typing import Any, Callable

import numpy as np
import numpy.typing as npt

class BootflowError(ValueError):
    """An error reported by bootflow: a bad config or argument, or a failure while running."""

class Target:
    """A target density: a registered name, a Rhai script or a Python callable."""

    @property
    def dim(self) -> int: ...
    @property
    def has_grad(self) -> bool: ...
    @property
    def has_sampler(self) -> bool: ...
    @property
    def log_z(self) -> float | None: ...
    @property
    def observable_names(self) -> list[str]: ...
    @property
    def spec_json(self) -> str: ...
    def log_prob(self, x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """Unnormalised log-density at each row of `x` (shape (n, dim))."""
    def log_prob_grad(
        self, x: npt.NDArray[np.float64]
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """Log-density (n,) and its gradient (n, dim) at each row of `x`."""
    def time_eval(self, x: npt.NDArray[np.float64], repeats: int = 100, grad: bool = True) -> float:
        """Mean seconds per evaluation on `x` as bootflow makes it during training and sampling."""
    def sample(self, n: int, seed: int = 0) -> npt.NDArray[np.float64]:
        """`n` exact draws (n, dim) from the target's own sampler."""

class Flow:
    """A normalizing flow with the checkpoint it belongs to."""

    @property
    def dim(self) -> int: ...
    @property
    def n_params(self) -> int: ...
    @property
    def params(self) -> npt.NDArray[np.float64]: ...
    @property
    def step(self) -> int: ...
    @property
    def run_dir(self) -> str | None: ...
    def sample(self, n: int, seed: int = 0) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """`n` draws (n, dim) and their log-densities (n,)."""
    def log_q(self, x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """The flow's log-density at each row of `x`."""
    def save(self, path: str | PathLike[str]) -> str:
        """Writes the checkpoint (a `.json` file, or `checkpoint.json` in a directory); returns its path."""

def target(
    spec: str | PathLike[str] | Callable[[npt.NDArray[np.float64]], npt.NDArray[np.float64]],
    params: str,
    dim: int | None = None,
    grad: Callable[[npt.NDArray[np.float64]], npt.NDArray[np.float64]] | None = None,
) -> Target: ...
def list_targets() -> list[tuple[str, str]]: ...
def load_flow(path: str | PathLike[str]) -> Flow: ...
def train(
    config: str,
    config_is_path: bool,
    overrides: str,
    target: Target | None = None,
    out: str | None = None,
    progress: Callable[[str, int, int, float | None], Any] | None = None,
) -> tuple[Flow, str, str, str, bool]: ...
def sample(
    target: Target,
    method_name: str,
    flow: Flow | None,
    chains: int,
    draws: int,
    warmup: int,
    seed: int,
    init_scale: float,
    kernel_options: str,
    ais_steps: int,
    out: str | None = None,
    progress: Callable[[str, int, int, float | None], Any] | None = None,
) -> tuple[
    str,
    npt.NDArray[np.float64],
    list[tuple[str, npt.NDArray[np.float64]]],
    npt.NDArray[np.float64],
    npt.NDArray[np.float64],
]: ...
def estimate(
    flow: Flow, target: Target | None = None, samples: int = 100000, seed: int = 0, ais_steps: int | None = None
) -> str: ...
