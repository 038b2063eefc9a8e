//! MCMC kernels: one transition, applied to a whole batch of chains at once, that leaves a given
//! log-density invariant.

use crate::Batch;
use crate::error::Result;
use crate::model::target::LogDensity;
use crate::rng::Rng;

/// Positions of a batch of chains with their cached log-density (and gradient, for kernels that
/// use one), so a transition never re-evaluates the current point.
#[derive(Clone, Debug)]
pub struct ChainState {
    /// Chain positions, `dim x n_chains`, one chain per column.
    pub x: Batch,
    /// Log-density at each column of `x`.
    pub log_p: Vec<f64>,
    /// Gradient of the log-density at each column of `x`, when the kernel uses one.
    pub grad: Option<Batch>,
}

impl ChainState {
    /// Evaluates `density` at `x` (with the gradient when `with_grad`) to start chains there.
    pub fn new(density: &dyn LogDensity, x: Batch, with_grad: bool) -> Result<Self> {
        let mut log_p = vec![0.0; x.ncols()];
        let grad = if with_grad {
            let mut g = Batch::zeros(x.nrows(), x.ncols());
            density.eval(&x, &mut log_p, Some(&mut g))?;
            Some(g)
        } else {
            density.eval(&x, &mut log_p, None)?;
            None
        };
        Ok(Self { x, log_p, grad })
    }

    /// Number of chains (columns of `x`).
    pub fn n_chains(&self) -> usize {
        self.x.ncols()
    }
}

/// What one transition did, per chain.
#[derive(Clone, Debug, Default)]
pub struct StepStats {
    /// Metropolis–Hastings acceptance probability of the proposal, `min(1, ratio)` (0 for a
    /// non-finite proposal).
    pub accept_prob: Vec<f64>,
    /// Whether the proposal was taken.
    pub accepted: Vec<bool>,
}

impl StepStats {
    /// Mean acceptance probability over chains.
    pub fn mean_accept(&self) -> f64 {
        if self.accept_prob.is_empty() {
            0.0
        } else {
            self.accept_prob.iter().sum::<f64>() / self.accept_prob.len() as f64
        }
    }
}

/// One MCMC transition on a batch of chains. Keeps its own tuned state (e.g. step size) and
/// adapts it while adaptation is switched on.
pub trait Kernel: Send + Sync {
    /// Whether `step` needs `state.grad` (and gradients from the density).
    fn needs_grad(&self) -> bool;
    /// Moves every chain once; the state's cached values stay consistent with its positions.
    fn step(&mut self, density: &dyn LogDensity, state: &mut ChainState, rng: &mut Rng) -> Result<StepStats>;
    /// Switches adaptation of the tuned state on (warm-up) or off (frozen).
    fn set_adapt(&mut self, on: bool);
    /// Tuned quantities for reporting, e.g. `("step_size", 0.1)`.
    fn tuning(&self) -> Vec<(String, f64)>;
    /// Internal state (tuning and adaptation counters) for checkpoints.
    fn state(&self) -> Vec<f64>;
    /// Restores what [`Kernel::state`] returned.
    fn set_state(&mut self, state: &[f64]) -> Result<()>;
    /// An independent copy (AIS keeps one kernel per annealing step).
    fn boxed_clone(&self) -> Result<Box<dyn Kernel>>;
}
