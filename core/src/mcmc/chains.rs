//! Runs N chains of a [`Kernel`] on a [`LogDensity`]: a warm-up with adaptation switched on,
//! then `n_draws` transitions with the tuning frozen. All chains advance together as one batch
//! (one kernel step moves every column), and every kept draw is handed to a callback as it is
//! made, so a caller can write chain files while the run goes on.
//!
//! ```
//! use bootflow_core::{ChainConfig, run_chains};
//! use bootflow_core::{RandomWalk, RandomWalkConfig};
//! use bootflow_core::{Batch, LogDensity, Result, rng};
//!
//! struct Normal;
//! impl LogDensity for Normal {
//!     fn dim(&self) -> usize { 1 }
//!     fn eval(&self, x: &Batch, out: &mut [f64], _g: Option<&mut Batch>) -> Result<()> {
//!         out.iter_mut().zip(x.iter()).for_each(|(o, v)| *o = -0.5 * v * v);
//!         Ok(())
//!     }
//! }
//! let mut kernel = RandomWalk::new(RandomWalkConfig::default()).unwrap();
//! let cfg = ChainConfig { n_chains: 4, n_warmup: 50, n_draws: 100, init_scale: 1.0 };
//! let mut sum = 0.0;
//! let out = run_chains(&mut kernel, &Normal, &cfg, None, &mut rng::stream(1, 0), |d| {
//!     sum += d.state.x.sum();
//!     Ok(())
//! })
//! .unwrap();
//! assert_eq!(out.accept_rate.len(), 4);
//! ```

use crate::Batch;
use crate::error::{Error, Result, check_dim};
use crate::model::kernel::{ChainState, Kernel, StepStats};
use crate::model::target::LogDensity;
use crate::rng::{Rng, fill_normal};

/// Sizes of a multi-chain run.
#[derive(Clone, Debug)]
pub struct ChainConfig {
    /// Number of chains, advanced together as one batch.
    pub n_chains: usize,
    /// Transitions with adaptation on; not reported.
    pub n_warmup: usize,
    /// Transitions with adaptation off; each one is reported.
    pub n_draws: usize,
    /// Standard deviation of the random start points `N(0, init_scale^2 I)`.
    pub init_scale: f64,
}

/// One kept transition of all chains: column `j` of `state.x` is chain `j`'s draw number `index`
/// (counting from 0 after warm-up).
pub struct ChainDraw<'a> {
    pub index: usize,
    pub state: &'a ChainState,
    pub stats: &'a StepStats,
}

/// Summary of a multi-chain run.
#[derive(Clone, Debug)]
pub struct ChainRun {
    /// Mean acceptance probability of each chain over the kept draws.
    pub accept_rate: Vec<f64>,
    /// Mean over chains of `accept_rate`.
    pub mean_accept: f64,
    /// The kernel's tuning after warm-up (e.g. the frozen step size).
    pub tuning: Vec<(String, f64)>,
    /// The final state of every chain.
    pub last: ChainState,
}

/// Runs the chains. Start points are `init` (`dim x n_chains`) when given, otherwise drawn from
/// `N(0, init_scale^2 I)` with `rng`. A start point with a non-finite log-density is an error.
pub fn run_chains(
    kernel: &mut dyn Kernel,
    density: &dyn LogDensity,
    cfg: &ChainConfig,
    init: Option<Batch>,
    rng: &mut Rng,
    mut on_draw: impl FnMut(ChainDraw<'_>) -> Result<()>,
) -> Result<ChainRun> {
    let dim = density.dim();
    if cfg.n_chains == 0 {
        return Err(Error::Config("the number of chains must be at least 1".into()));
    }
    let x0 = match init {
        Some(x) => {
            check_dim("start point rows", x.nrows(), dim)?;
            check_dim("start point columns (chains)", x.ncols(), cfg.n_chains)?;
            x
        }
        None => {
            if !(cfg.init_scale >= 0.0 && cfg.init_scale.is_finite()) {
                return Err(Error::Config(format!("init_scale must be finite and >= 0, got {}", cfg.init_scale)));
            }
            let mut x = Batch::zeros(dim, cfg.n_chains);
            fill_normal(rng, x.as_mut_slice());
            x * cfg.init_scale
        }
    };
    let mut state = ChainState::new(density, x0, kernel.needs_grad())?;
    if let Some(j) = state.log_p.iter().position(|v| !v.is_finite()) {
        return Err(Error::NonFinite(format!(
            "log-density {} at the start point of chain {j}; give start points inside the support or a smaller init_scale",
            state.log_p[j]
        )));
    }
    kernel.set_adapt(true);
    for _ in 0..cfg.n_warmup {
        kernel.step(density, &mut state, rng)?;
    }
    kernel.set_adapt(false);
    let tuning = kernel.tuning();
    let mut accept = vec![0.0; cfg.n_chains];
    for index in 0..cfg.n_draws {
        let stats = kernel.step(density, &mut state, rng)?;
        accept.iter_mut().zip(&stats.accept_prob).for_each(|(a, p)| *a += p);
        on_draw(ChainDraw { index, state: &state, stats: &stats })?;
    }
    let accept_rate: Vec<f64> = accept.iter().map(|a| a / cfg.n_draws.max(1) as f64).collect();
    let mean_accept = accept_rate.iter().sum::<f64>() / cfg.n_chains as f64;
    Ok(ChainRun { accept_rate, mean_accept, tuning, last: state })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcmc::rwm::{RandomWalk, RandomWalkConfig};

    /// `N(3, 2^2)` in one dimension, `-inf` below -20 (never reached in practice).
    struct Shifted;
    impl LogDensity for Shifted {
        fn dim(&self) -> usize {
            1
        }
        fn eval(&self, x: &Batch, out: &mut [f64], _g: Option<&mut Batch>) -> Result<()> {
            out.iter_mut()
                .zip(x.iter())
                .for_each(|(o, v)| *o = if *v < -20.0 { f64::NEG_INFINITY } else { -0.125 * (v - 3.0).powi(2) });
            Ok(())
        }
    }

    fn run(seed: u64) -> (Vec<f64>, ChainRun) {
        let mut k = RandomWalk::new(RandomWalkConfig { step_size: 0.5, target_accept: 0.4 }).unwrap();
        let cfg = ChainConfig { n_chains: 32, n_warmup: 300, n_draws: 1000, init_scale: 1.0 };
        let mut sums = vec![0.0; 32];
        let mut count = 0;
        let out = run_chains(&mut k, &Shifted, &cfg, None, &mut crate::rng::stream(seed, 0), |d| {
            assert_eq!(d.index, count);
            count += 1;
            sums.iter_mut().zip(d.state.x.iter()).for_each(|(s, v)| *s += v);
            Ok(())
        })
        .unwrap();
        assert_eq!(count, 1000);
        (sums.iter().map(|s| s / 1000.0).collect(), out)
    }

    #[test]
    fn chains_sample_the_density_after_warm_up() {
        let (means, out) = run(4);
        // The 32 chains are independent, so the spread of their means estimates the standard
        // error of the grand mean including autocorrelation; 4 of those is the tolerance.
        let grand = means.iter().sum::<f64>() / 32.0;
        let var = means.iter().map(|m| (m - grand).powi(2)).sum::<f64>() / 31.0;
        let se = (var / 32.0).sqrt();
        assert!((grand - 3.0).abs() < 4.0 * se, "mean {grand} +- {se}");
        assert!(se < 0.05, "the chains should mix: se {se}");
        // Warm-up adapted the step (Robbins–Monro): acceptance close to 0.4.
        assert!((out.mean_accept - 0.4).abs() < 0.05, "acceptance {}", out.mean_accept);
        assert_eq!(out.tuning.len(), 1);
        assert!(out.tuning[0].1 > 0.5, "step grew from 0.5 to fit the width-2 target: {:?}", out.tuning);
    }

    #[test]
    fn runs_are_reproducible_from_the_seed() {
        assert_eq!(run(9).0, run(9).0);
        assert_ne!(run(9).0, run(10).0);
    }

    #[test]
    fn bad_start_points_are_reported() {
        let mut k = RandomWalk::new(RandomWalkConfig::default()).unwrap();
        let cfg = ChainConfig { n_chains: 2, n_warmup: 0, n_draws: 1, init_scale: 1.0 };
        let x = Batch::from_row_slice(1, 2, &[0.0, -30.0]);
        let err = run_chains(&mut k, &Shifted, &cfg, Some(x), &mut crate::rng::stream(1, 0), |_| Ok(())).unwrap_err();
        assert!(err.to_string().contains("chain 1"), "{err}");
        let wrong = Batch::zeros(1, 3);
        assert!(run_chains(&mut k, &Shifted, &cfg, Some(wrong), &mut crate::rng::stream(1, 0), |_| Ok(())).is_err());
    }
}
