//! The log Z accuracy protocol of the FAB JAX code (docs/metrics.md §3, *Error of log Z across
//! runs*): `K` independent estimates of `log Z`, each from `M` fresh flow samples (and, with AIS,
//! from those samples annealed towards p), compared with the target's known `log Z`. Reported:
//! the mean absolute error over the `K` estimates and its standard error (the spread of the
//! absolute errors over `sqrt(K)`).

use serde::{Deserialize, Serialize};

use crate::diagnostics::eval::{AisEvalConfig, chunks, log_weights};
use crate::diagnostics::importance::log_z;
use crate::error::{Error, Result};
use crate::flow::Flow;
use crate::model::density::FlowDensity;
use crate::model::target::{Target, TargetDensity};
use crate::registry::Registry;
use crate::rng::Rng;

/// Columns per pass through the flow, as in the evaluation: memory stays bounded whatever `M`.
const CHUNK: usize = 10_000;

/// Fewest batches: with one there is no standard error.
pub const MIN_BATCHES: usize = 2;
/// Most batches (each keeps a few numbers).
pub const MAX_BATCHES: usize = 10_000_000;

/// The absolute errors of one kind of estimate over the batches.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct BatchErrors {
    /// `mean_k |log Z_k - log Z|`.
    pub mean_abs_error: f64,
    /// Standard error of that mean: sample standard deviation of `|log Z_k - log Z|` over `sqrt(K)`.
    pub se: f64,
    /// The `K` estimates `log Z_k`, in batch order.
    pub estimates: Vec<f64>,
}

impl BatchErrors {
    fn new(estimates: Vec<f64>, exact: f64) -> Self {
        let k = estimates.len() as f64;
        let abs: Vec<f64> = estimates.iter().map(|e| (e - exact).abs()).collect();
        let mean = abs.iter().sum::<f64>() / k;
        let var = abs.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / (k - 1.0);
        BatchErrors { mean_abs_error: mean, se: (var / k).sqrt(), estimates }
    }
}

/// The protocol's figures.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct LogZBatches {
    /// Number `K` of independent estimates.
    pub batches: usize,
    /// Flow samples `M` per estimate.
    pub batch_samples: usize,
    /// The target's exact `log Z`.
    pub log_z_exact: f64,
    /// Importance sampling with the flow alone.
    pub flow: BatchErrors,
    /// The same samples annealed towards p; `None` without AIS.
    pub ais: Option<BatchErrors>,
}

/// Refuses a protocol that cannot run: a target whose log Z is not known, fewer than
/// [`MIN_BATCHES`] or more than [`MAX_BATCHES`] batches, fewer than 2 samples per batch. Returns
/// the exact log Z.
pub fn check_request(target: &dyn Target, batches: usize, batch_samples: usize) -> Result<f64> {
    let exact = target.log_z().ok_or_else(|| {
        Error::Config(format!(
            "--log-z-batches {batches}: the target's log Z is not known, so there is no error to measure"
        ))
    })?;
    if !(MIN_BATCHES..=MAX_BATCHES).contains(&batches) {
        return Err(Error::Config(format!(
            "--log-z-batches {batches}: expected {MIN_BATCHES} to {MAX_BATCHES} batches (two at least for a standard error)"
        )));
    }
    if batch_samples < 2 {
        return Err(Error::Config(format!("--batch-samples {batch_samples}: an estimate needs at least 2 samples")));
    }
    Ok(exact)
}

/// Runs the protocol: `batches` estimates of `batch_samples` samples each, from `rng`. The AIS
/// kernels (when `ais` is given) keep their state, and adapt if the config says so, from one
/// batch to the next; each batch is still an independent valid AIS run.
pub fn log_z_batches(
    flow: &Flow,
    target: &dyn Target,
    ais: Option<&AisEvalConfig>,
    batches: usize,
    batch_samples: usize,
    registry: &Registry,
    rng: &mut Rng,
) -> Result<LogZBatches> {
    let exact = check_request(target, batches, batch_samples)?;
    crate::error::check_dim("target dimension", target.dim(), flow.dim())?;
    let mut annealer = ais.map(|a| a.annealer(registry, flow.dim())).transpose()?;
    let (mut plain, mut annealed) = (Vec::with_capacity(batches), Vec::new());
    for _ in 0..batches {
        let (mut lw, mut lw_ais) = (Vec::with_capacity(batch_samples), Vec::new());
        for n in chunks(batch_samples, CHUNK) {
            let (x, log_q) = flow.sample_with_log_q(n, rng)?;
            lw.extend(log_weights(target, &x, &log_q)?);
            if let Some(an) = annealer.as_mut() {
                lw_ais.extend(an.run(&FlowDensity(flow), &TargetDensity(target), x, &log_q, rng)?.log_w);
            }
        }
        plain.push(log_z(&lw)?.log_z);
        if annealer.is_some() {
            annealed.push(log_z(&lw_ais)?.log_z);
        }
    }
    Ok(LogZBatches {
        batches,
        batch_samples,
        log_z_exact: exact,
        flow: BatchErrors::new(plain, exact),
        ais: annealer.map(|_| BatchErrors::new(annealed, exact)),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::registry::parse_config;
    use crate::rng::stream;

    /// An affine flow set to the Gaussian target exactly: every weight is 1, so each estimate
    /// is exact to rounding; moved off it, the errors follow the delta-method standard error.
    #[test]
    fn errors_are_zero_at_the_target_and_follow_the_standard_error_off_it() {
        let reg = Registry::with_builtins();
        let target = reg.target("gaussian", &json!({"mean": [1.0, -2.0], "std": [0.5, 2.0]})).unwrap();
        let spec = parse_config("flow", &json!({"layers": [{"type": "affine"}]})).unwrap();
        let mut flow = reg.flow(2, &spec, 0).unwrap();
        // Element-wise affine parameters: log scales, then shifts.
        flow.set_params(&[0.5f64.ln(), 2f64.ln(), 1.0, -2.0]).unwrap();
        let r = log_z_batches(&flow, target.as_ref(), None, 5, 300, &reg, &mut stream(3, 0)).unwrap();
        assert!(r.flow.mean_abs_error < 1e-12 && r.ais.is_none() && r.flow.estimates.len() == 5, "{r:?}");
        // Scale 1.3x too wide: weights vary; the mean |error| of K = 400 estimates of M = 400
        // matches sqrt(2/pi) times the spread of the estimates within 5 of its standard errors.
        flow.set_params(&[(0.65f64).ln(), (2.6f64).ln(), 1.0, -2.0]).unwrap();
        let r = log_z_batches(&flow, target.as_ref(), None, 400, 400, &reg, &mut stream(4, 0)).unwrap();
        let e = &r.flow.estimates;
        let m = e.iter().sum::<f64>() / e.len() as f64;
        let sd = (e.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (e.len() - 1) as f64).sqrt();
        let half_normal = sd * (2.0 / std::f64::consts::PI).sqrt();
        assert!(r.flow.mean_abs_error > 0.0 && r.flow.se > 0.0);
        assert!(
            (r.flow.mean_abs_error - half_normal).abs() < 5.0 * r.flow.se,
            "{} vs {half_normal}",
            r.flow.mean_abs_error
        );
    }

    #[test]
    fn needs_a_known_log_z_and_two_batches() {
        let reg = Registry::with_builtins();
        let spec = parse_config("flow", &json!({"layers": [{"type": "affine"}]})).unwrap();
        let flow = reg.flow(2, &spec, 0).unwrap();
        let gaussian = reg.target("gaussian", &json!({"dim": 2})).unwrap();
        let err = log_z_batches(&flow, gaussian.as_ref(), None, 1, 100, &reg, &mut stream(0, 0)).unwrap_err();
        assert!(err.to_string().contains("--log-z-batches 1"), "{err}");
        let err = log_z_batches(&flow, gaussian.as_ref(), None, 3, 1, &reg, &mut stream(0, 0)).unwrap_err();
        assert!(err.to_string().contains("--batch-samples 1"), "{err}");
        struct Unnormalised;
        impl Target for Unnormalised {
            fn dim(&self) -> usize {
                2
            }
            fn log_prob(&self, x: &[f64]) -> Result<f64> {
                Ok(-0.5 * (x[0] * x[0] + x[1] * x[1]))
            }
        }
        let err = log_z_batches(&flow, &Unnormalised, None, 3, 100, &reg, &mut stream(0, 0)).unwrap_err();
        assert!(err.to_string().contains("log Z is not known"), "{err}");
    }
}
