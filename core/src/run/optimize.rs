//! `bootflow optimize`: the modes of a target's log-density, by L-BFGS (argmin, with the
//! More-Thuente line search) on `-log p~` from several random starts. Starts that end at the
//! same point are one mode; each mode is reported with its log-density, the gradient norm
//! there and the starts that found it, best first. A start that fails (a non-finite density
//! on its path, no convergence within the iteration limit) is reported with why, never an error
//! of the whole search.

use argmin::core::{CostFunction, Executor, Gradient, State, TerminationReason, TerminationStatus};
use argmin::solver::linesearch::MoreThuenteLineSearch;
use argmin::solver::quasinewton::LBFGS;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::model::target::Target;
use crate::rng;
use crate::run::progress::RunProgress;

/// Correction pairs kept by L-BFGS.
const HISTORY: usize = 10;
/// L-BFGS stops when the gradient norm of `-log p~` falls below this.
const GRAD_TOLERANCE: f64 = 1e-9;
/// A start has converged when the gradient norm at its end is at most this times
/// `1 + |log p~|` (scale-free, so targets with large log-densities are judged alike).
const CONVERGED_GRAD: f64 = 1e-5;
/// Two ends are the same mode when they are closer than this times `1 + |x|`.
const SAME_MODE: f64 = 1e-4;
/// Most starts and iterations a search may ask for (bounded time on any input).
const MAX_STARTS: usize = 100_000;
const MAX_ITERS: u64 = 1_000_000;

/// How the search runs.
#[derive(Clone, Debug)]
pub struct OptimizeConfig {
    /// Random starts, each `N(0, init_scale^2)` per coordinate.
    pub starts: usize,
    /// Standard deviation of the starts.
    pub init_scale: f64,
    /// Seed of the starts (start `k` from stream `k`).
    pub seed: u64,
    /// L-BFGS iterations per start.
    pub max_iters: u64,
}

impl Default for OptimizeConfig {
    fn default() -> Self {
        Self { starts: 16, init_scale: 1.0, seed: 0, max_iters: 1000 }
    }
}

/// A mode of the target.
#[derive(Clone, Debug, Serialize)]
pub struct Mode {
    /// Where it is (the end point of the best start that found it).
    pub x: Vec<f64>,
    /// `log p~` there.
    pub log_p: f64,
    /// Euclidean norm of the gradient of `log p~` there.
    pub grad_norm: f64,
    /// The starts (indices) that ended here.
    pub starts: Vec<usize>,
}

/// A start that found no mode, and why.
#[derive(Clone, Debug, Serialize)]
pub struct FailedStart {
    /// The start's index (its stream of the seed).
    pub start: usize,
    /// Why it found no mode.
    pub why: String,
}

/// What the search found.
#[derive(Clone, Debug, Serialize)]
pub struct Modes {
    /// Modes by decreasing `log p~`.
    pub modes: Vec<Mode>,
    /// Starts that ended nowhere.
    pub failed: Vec<FailedStart>,
    /// The target's dimension.
    pub dim: usize,
    /// Starts made.
    pub starts: usize,
}

/// Density evaluations allowed per L-BFGS iteration: the iteration limit bounds the outer loop
/// only, and a line search on a density without a mode (one that grows without bound) would
/// never end.
const EVALS_PER_ITER: u64 = 50;

/// `-log p~` and its gradient, as argmin minimises, with a budget of evaluations.
struct NegLogDensity<'a> {
    target: &'a dyn Target,
    evals: std::cell::Cell<u64>,
    max_evals: u64,
}

impl NegLogDensity<'_> {
    fn count(&self) -> std::result::Result<(), argmin::core::Error> {
        self.evals.set(self.evals.get() + 1);
        if self.evals.get() > self.max_evals {
            return Err(argmin::core::Error::msg(format!(
                "{} density evaluations without convergence",
                self.max_evals
            )));
        }
        Ok(())
    }
}

impl CostFunction for NegLogDensity<'_> {
    type Param = Vec<f64>;
    type Output = f64;
    fn cost(&self, x: &Vec<f64>) -> std::result::Result<f64, argmin::core::Error> {
        self.count()?;
        Ok(-self.target.log_prob(x)?)
    }
}

impl Gradient for NegLogDensity<'_> {
    type Param = Vec<f64>;
    type Gradient = Vec<f64>;
    fn gradient(&self, x: &Vec<f64>) -> std::result::Result<Vec<f64>, argmin::core::Error> {
        self.count()?;
        let mut g = vec![0.0; x.len()];
        self.target.log_prob_grad(x, &mut g)?;
        g.iter_mut().for_each(|v| *v = -*v);
        Ok(g)
    }
}

/// `log p~` and the norm of its gradient at `x`.
fn value_and_grad_norm(target: &dyn Target, x: &[f64]) -> Result<(f64, f64)> {
    let mut g = vec![0.0; x.len()];
    let lp = target.log_prob_grad(x, &mut g)?;
    Ok((lp, g.iter().map(|v| v * v).sum::<f64>().sqrt()))
}

/// Checks the config and the target before any work is done.
fn check(target: &dyn Target, cfg: &OptimizeConfig) -> Result<()> {
    if !target.has_grad() {
        return Err(Error::Unsupported(
            "the mode search (L-BFGS) needs the target's gradient, which this target does not provide".into(),
        ));
    }
    if !(1..=MAX_STARTS).contains(&cfg.starts) {
        return Err(Error::Config(format!("--starts {}: give 1 to {MAX_STARTS}", cfg.starts)));
    }
    if !(1..=MAX_ITERS).contains(&cfg.max_iters) {
        return Err(Error::Config(format!("--max-iters {}: give 1 to {MAX_ITERS}", cfg.max_iters)));
    }
    if !(cfg.init_scale > 0.0 && cfg.init_scale.is_finite()) {
        return Err(Error::Config(format!("--init-scale {}: must be positive and finite", cfg.init_scale)));
    }
    crate::run::budget::check_dimension("the target's dimension", target.dim() as f64)
}

/// One L-BFGS run from `start`: its end point, or why it found no mode.
fn descend(target: &dyn Target, start: Vec<f64>, max_iters: u64) -> std::result::Result<Vec<f64>, String> {
    let line_search = MoreThuenteLineSearch::new();
    let solver = LBFGS::new(line_search, HISTORY).with_tolerance_grad(GRAD_TOLERANCE).map_err(|e| e.to_string())?;
    let problem = NegLogDensity { target, evals: std::cell::Cell::new(0), max_evals: EVALS_PER_ITER * max_iters + 100 };
    let result = Executor::new(problem, solver)
        .configure(|s| s.param(start).max_iters(max_iters))
        .run()
        .map_err(|e| format!("L-BFGS stopped: {e}"))?;
    let mut state = result.state;
    if let TerminationStatus::Terminated(TerminationReason::MaxItersReached) = state.get_termination_status() {
        return Err(format!("no convergence in {max_iters} iterations"));
    }
    state.take_best_param().ok_or_else(|| "L-BFGS returned no point".to_string())
}

/// Runs the search on `target`.
pub fn find_modes(target: &dyn Target, cfg: &OptimizeConfig, progress: &dyn RunProgress) -> Result<Modes> {
    check(target, cfg)?;
    let d = target.dim();
    let counter = progress.counter("starts", cfg.starts as u64);
    let stop = progress.stop();
    let mut modes: Vec<Mode> = Vec::new();
    let mut failed = Vec::new();
    for k in 0..cfg.starts {
        if stop.as_ref().is_some_and(|f| f.load(std::sync::atomic::Ordering::Relaxed)) {
            return Err(Error::Interrupted);
        }
        let mut start = vec![0.0; d];
        rng::fill_normal(&mut rng::stream(cfg.seed, k as u64), &mut start);
        start.iter_mut().for_each(|v| *v *= cfg.init_scale);
        let end = descend(target, start, cfg.max_iters).and_then(|x| {
            let (lp, gn) = value_and_grad_norm(target, &x).map_err(|e| e.to_string())?;
            if !(lp.is_finite() && gn.is_finite()) {
                return Err(format!("ended where log p~ = {lp} and |grad| = {gn}"));
            }
            if gn > CONVERGED_GRAD * (1.0 + lp.abs()) {
                return Err(format!("ended where |grad log p~| = {gn:.3e}, not at a mode"));
            }
            Ok((x, lp, gn))
        });
        counter.advance(1);
        let (x, log_p, grad_norm) = match end {
            Ok(e) => e,
            Err(why) => {
                failed.push(FailedStart { start: k, why });
                continue;
            }
        };
        let norm = x.iter().map(|v| v * v).sum::<f64>().sqrt();
        let near = |m: &Mode| {
            let dist = m.x.iter().zip(&x).map(|(a, b)| (a - b).powi(2)).sum::<f64>().sqrt();
            dist <= SAME_MODE * (1.0 + norm)
        };
        match modes.iter_mut().find(|m| near(m)) {
            Some(m) => {
                m.starts.push(k);
                if log_p > m.log_p {
                    (m.x, m.log_p, m.grad_norm) = (x, log_p, grad_norm);
                }
            }
            None => modes.push(Mode { x, log_p, grad_norm, starts: vec![k] }),
        }
    }
    counter.finish();
    modes.sort_by(|a, b| b.log_p.total_cmp(&a.log_p));
    Ok(Modes { modes, failed, dim: d, starts: cfg.starts })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::progress::Quiet;
    use crate::train::test_support::Gaussian;

    /// Two unit-variance Gaussian bumps at -3 and +3 along every axis, weights 0.3 and 0.7.
    struct TwoBumps(usize);

    impl Target for TwoBumps {
        fn dim(&self) -> usize {
            self.0
        }
        fn log_prob(&self, x: &[f64]) -> Result<f64> {
            let mut g = vec![0.0; self.0];
            self.log_prob_grad(x, &mut g)
        }
        fn has_grad(&self) -> bool {
            true
        }
        fn log_prob_grad(&self, x: &[f64], grad: &mut [f64]) -> Result<f64> {
            let sq = |c: f64| x.iter().map(|v| (v - c).powi(2)).sum::<f64>();
            let (a, b) = (0.3f64.ln() - 0.5 * sq(-3.0), 0.7f64.ln() - 0.5 * sq(3.0));
            let m = a.max(b);
            let (wa, wb) = ((a - m).exp(), (b - m).exp());
            let lse = m + (wa + wb).ln();
            let (pa, pb) = (wa / (wa + wb), wb / (wa + wb));
            for (g, v) in grad.iter_mut().zip(x) {
                *g = pa * (-3.0 - v) + pb * (3.0 - v);
            }
            Ok(lse)
        }
    }

    #[test]
    fn both_modes_of_a_mixture_are_found_best_first() {
        let cfg = OptimizeConfig { starts: 12, init_scale: 3.0, ..Default::default() };
        let found = find_modes(&TwoBumps(3), &cfg, &Quiet).unwrap();
        assert_eq!(found.modes.len(), 2, "{found:?}");
        assert!(found.failed.is_empty(), "{found:?}");
        let (best, other) = (&found.modes[0], &found.modes[1]);
        // The modes sit at +-3 up to the other bump's pull, exp(-18) small.
        for (m, c, w) in [(best, 3.0, 0.7f64), (other, -3.0, 0.3)] {
            assert!(m.x.iter().all(|v| (v - c).abs() < 1e-6), "{m:?}");
            assert!((m.log_p - w.ln()).abs() < 1e-9, "{m:?}");
        }
        assert_eq!(best.starts.len() + other.starts.len(), 12);
        assert!(!best.starts.is_empty() && !other.starts.is_empty());
    }

    #[test]
    fn a_gaussian_mode_is_its_mean_and_bad_settings_are_refused() {
        let target = Gaussian { mu: vec![1.0, -2.0, 0.5], sigma: vec![0.1, 3.0, 1.0] };
        let found = find_modes(&target, &OptimizeConfig { starts: 3, ..Default::default() }, &Quiet).unwrap();
        assert_eq!(found.modes.len(), 1, "{found:?}");
        let m = &found.modes[0];
        assert_eq!(m.starts, [0, 1, 2]);
        for (x, mu) in m.x.iter().zip(&target.mu) {
            assert!((x - mu).abs() < 1e-7, "{m:?}");
        }
        for (cfg, flag) in [
            (OptimizeConfig { starts: 0, ..Default::default() }, "--starts"),
            (OptimizeConfig { max_iters: 0, ..Default::default() }, "--max-iters"),
            (OptimizeConfig { init_scale: f64::NAN, ..Default::default() }, "--init-scale"),
        ] {
            let err = find_modes(&target, &cfg, &Quiet).unwrap_err().to_string();
            assert!(err.contains(flag), "{err}");
        }
    }

    /// An improper density (log p~ = sum x) has no mode: every start fails, with why.
    struct Slope;

    impl Target for Slope {
        fn dim(&self) -> usize {
            2
        }
        fn log_prob(&self, x: &[f64]) -> Result<f64> {
            Ok(x.iter().sum())
        }
        fn has_grad(&self) -> bool {
            true
        }
        fn log_prob_grad(&self, x: &[f64], grad: &mut [f64]) -> Result<f64> {
            grad.fill(1.0);
            self.log_prob(x)
        }
    }

    #[test]
    fn a_density_without_a_mode_fails_every_start() {
        let found =
            find_modes(&Slope, &OptimizeConfig { starts: 2, max_iters: 50, ..Default::default() }, &Quiet).unwrap();
        assert!(found.modes.is_empty(), "{found:?}");
        assert_eq!(found.failed.iter().map(|f| f.start).collect::<Vec<_>>(), [0, 1]);
    }
}
