//! `bootflow sample --method laplace`: the Laplace approximation of a target, a Gaussian at the
//! best mode [`find_modes`] reaches with the inverse of minus the Hessian of `log p~` there as
//! its covariance. The Hessian comes from central differences of the target's own gradient
//! (one column per coordinate), symmetrised. Draws are independent, written like any chain, and
//! weighted against the target (`w = p~ / q`) so the importance ESS and `log Z` in the summary
//! show how good the approximation is.

use nalgebra::{Cholesky, DMatrix, Dyn};
use serde_json::json;

use crate::error::{Error, Result, ResultExt};
use crate::model::target::Target;
use crate::output::summary::ImportanceSummary;
use crate::run::optimize::{OptimizeConfig, find_modes};
use crate::run::progress::RunProgress;
use crate::run::sample::{Plan, Sampled};
use crate::{Batch, rng};

/// Relative step of the central differences of the gradient.
const HESSIAN_STEP: f64 = 1e-5;
/// Draws made (and weighted) at a time per chain.
const DRAW_BATCH: usize = 256;

/// A Gaussian approximation of the target at a mode.
pub struct Laplace {
    /// The mode.
    pub mode: Vec<f64>,
    /// `log p~` at the mode.
    pub log_p_mode: f64,
    /// `U = L^T` for the Cholesky factor `L` of the precision `-H`: draws are
    /// `mode + U^{-1} z`.
    upper: DMatrix<f64>,
    /// `sum_i ln L_ii - d/2 ln(2 pi)`, the log-density's constant.
    log_norm: f64,
}

/// `H = d^2 log p~ / dx^2` at `x`, by central differences of the gradient, symmetrised.
pub fn hessian(target: &dyn Target, x: &[f64]) -> Result<DMatrix<f64>> {
    let d = x.len();
    let mut h = DMatrix::zeros(d, d);
    let (mut plus, mut minus) = (vec![0.0; d], vec![0.0; d]);
    let mut at = x.to_vec();
    for j in 0..d {
        let step = HESSIAN_STEP * (1.0 + x[j].abs());
        at[j] = x[j] + step;
        target.log_prob_grad(&at, &mut plus)?;
        at[j] = x[j] - step;
        target.log_prob_grad(&at, &mut minus)?;
        at[j] = x[j];
        for i in 0..d {
            h[(i, j)] = (plus[i] - minus[i]) / (2.0 * step);
        }
    }
    let sym = (&h + h.transpose()) * 0.5;
    if let Some(v) = sym.iter().find(|v| !v.is_finite()) {
        return Err(Error::NonFinite(format!("the Hessian of log p~ at the mode has an entry {v}")));
    }
    Ok(sym)
}

impl Laplace {
    /// The approximation at `mode` (where `log p~ = log_p_mode`).
    pub fn at(target: &dyn Target, mode: Vec<f64>, log_p_mode: f64) -> Result<Self> {
        let precision = -hessian(target, &mode)?;
        let chol: Cholesky<f64, Dyn> = Cholesky::new(precision).ok_or_else(|| {
            Error::Other(format!(
                "the Hessian of log p~ at the mode (log p~ = {log_p_mode}) is not negative definite: \
                 no Gaussian approximation there (a ridge or a saddle of the target)"
            ))
        })?;
        let l = chol.l();
        let d = mode.len() as f64;
        let log_norm = l.diagonal().iter().map(|v| v.ln()).sum::<f64>() - 0.5 * d * (2.0 * std::f64::consts::PI).ln();
        Ok(Self { mode, log_p_mode, upper: l.transpose(), log_norm })
    }

    /// `log det` of the covariance.
    pub fn log_det_covariance(&self) -> f64 {
        -2.0 * self.upper.diagonal().iter().map(|v| v.ln()).sum::<f64>()
    }

    /// The covariance, `(-H)^-1`.
    pub fn covariance(&self) -> Result<DMatrix<f64>> {
        let d = self.mode.len();
        let mut inv = DMatrix::identity(d, d);
        if !self.upper.solve_upper_triangular_mut(&mut inv) {
            return Err(Error::Bug("the Cholesky factor of the precision is singular".into()));
        }
        Ok(&inv * inv.transpose())
    }

    /// `n` independent draws (columns) and their log-density under the approximation.
    pub fn sample(&self, n: usize, r: &mut rng::Rng) -> Result<(Batch, Vec<f64>)> {
        let d = self.mode.len();
        let mut z = Batch::zeros(d, n);
        rng::fill_normal(r, z.as_mut_slice());
        let log_q = z.column_iter().map(|c| self.log_norm - 0.5 * c.norm_squared()).collect();
        if !self.upper.solve_upper_triangular_mut(&mut z) {
            return Err(Error::Bug("the Cholesky factor of the precision is singular".into()));
        }
        for mut c in z.column_iter_mut() {
            c.iter_mut().zip(&self.mode).for_each(|(v, m)| *v += m);
        }
        Ok((z, log_q))
    }
}

/// Runs `plan`'s chains of independent draws from the Laplace approximation at the best mode
/// (the search from `plan.sizes.init_scale` starts with the plan's seed); chain `c` draws from
/// stream `c` of the seed. Writes the chain files into `out` when given.
pub fn laplace(
    target: &dyn Target,
    plan: &Plan,
    out: Option<&std::path::Path>,
    progress: &dyn RunProgress,
) -> Result<Sampled> {
    let s = &plan.sizes;
    let search = OptimizeConfig { seed: s.seed, init_scale: s.init_scale.max(1e-3), ..Default::default() };
    crate::run::budget::check_hessian(target.dim())?;
    let found = find_modes(target, &search, progress).context("finding the mode")?;
    let Some(best) = found.modes.first() else {
        let why = found.failed.first().map_or(String::new(), |f| format!(": start {}: {}", f.start, f.why));
        return Err(Error::Other(format!("--method laplace: no start of {} reached a mode{why}", found.starts)));
    };
    let approx = Laplace::at(target, best.x.clone(), best.log_p)?;
    let (started, sink) = crate::run::sample::open_chains(target, plan, out)?;
    let counter = progress.counter("draws", (s.chains * s.draws) as u64);
    let mut rngs: Vec<_> = (0..s.chains).map(|c| rng::stream(s.seed, c as u64)).collect();
    let mut log_w = Vec::with_capacity(s.chains * s.draws);
    let mut log_p = vec![0.0; DRAW_BATCH];
    for done in (0..s.draws).step_by(DRAW_BATCH) {
        let m = DRAW_BATCH.min(s.draws - done);
        for (c, r) in rngs.iter_mut().enumerate() {
            if crate::run::sample::stopped(&progress.stop()) {
                return Err(Error::Interrupted);
            }
            let (x, log_q) = approx.sample(m, r)?;
            target.log_prob_batch(&x, &mut log_p[..m])?;
            for (j, (lp, lq)) in log_p[..m].iter().zip(&log_q).enumerate() {
                sink.record(c, *lp, 1.0, x.column(j).as_slice())?;
                log_w.push(lp - lq);
            }
            counter.advance(m as u64);
        }
    }
    counter.finish();
    let (mut summary, draws) = crate::run::sample::chain_summary(plan, started, 1.0, sink)?;
    summary.importance = Some(ImportanceSummary::from_log_weights(&log_w).context("importance weights")?);
    summary.extra.insert(
        "laplace".into(),
        json!({
            "mode": approx.mode,
            "log_p_mode": approx.log_p_mode,
            "log_det_covariance": approx.log_det_covariance(),
            "modes_found": found.modes.len(),
            "starts": found.starts,
        }),
    );
    Ok(Sampled { summary, draws })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::test_support::Gaussian;

    #[test]
    fn the_laplace_approximation_of_a_gaussian_is_that_gaussian() {
        let target = Gaussian { mu: vec![1.0, -2.0, 0.5], sigma: vec![0.1, 3.0, 1.0] };
        let h = hessian(&target, &target.mu).unwrap();
        for i in 0..3 {
            for j in 0..3 {
                let exact = if i == j { -1.0 / target.sigma[i].powi(2) } else { 0.0 };
                assert!((h[(i, j)] - exact).abs() < 1e-6 * (1.0 + exact.abs()), "H[{i},{j}] = {}", h[(i, j)]);
            }
        }
        let lp = target.log_prob(&target.mu).unwrap();
        let approx = Laplace::at(&target, target.mu.clone(), lp).unwrap();
        let exact_log_det: f64 = target.sigma.iter().map(|s| 2.0 * s.ln()).sum();
        assert!((approx.log_det_covariance() - exact_log_det).abs() < 1e-8);
        // q is the normalised target: every log weight is the test target's log Z.
        let log_z = exact_log_det / 2.0 + 1.5 * (2.0 * std::f64::consts::PI).ln();
        let (x, log_q) = approx.sample(500, &mut rng::stream(3, 0)).unwrap();
        let mut log_p = vec![0.0; 500];
        target.log_prob_batch(&x, &mut log_p).unwrap();
        for (p, q) in log_p.iter().zip(&log_q) {
            assert!((p - q - log_z).abs() < 1e-7, "{p} - {q} vs {log_z}");
        }
        // The draws have the target's scales (sd of 500 draws within 4 standard errors).
        for (i, s) in target.sigma.iter().enumerate() {
            let row: Vec<f64> = x.row(i).iter().copied().collect();
            let mean = row.iter().sum::<f64>() / 500.0;
            let sd = (row.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 499.0).sqrt();
            assert!((sd / s - 1.0).abs() < 4.0 / 1000f64.sqrt(), "coordinate {i}: sd {sd}, expected {s}");
        }
    }
}
