//! Reverse KL `KL(q || p)` with five gradient estimators (docs/metrics.md §2). The loss is the
//! variational free energy `F_q = mean_i s(x_i)`, `s = log q - log p~`, on a fresh batch `x_i ~ q`.

use serde::Deserialize;
use serde_json::Value;

use crate::Batch;
use crate::diagnostics::importance::kish_ess;
use crate::error::{Error, Result};
use crate::flow::Flow;
use crate::model::objective::{Objective, ObjectiveOutput};
use crate::model::target::Target;
use crate::registry::parse_config;
use crate::rng::Rng;
use crate::train::weights::mean;

/// How the reverse-KL gradient is estimated.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
pub enum Estimator {
    /// Score function: `mean_i s_i grad_theta log q(x_i)` at fixed `x_i`.
    #[serde(rename = "g1")]
    Score,
    /// Score function with the batch mean of `s` as baseline (expectation `(1 - 1/N)` times the gradient).
    #[serde(rename = "g2")]
    ScoreBaseline,
    /// Reparameterisation: differentiate `mean_i s(F(z_i))` at fixed base points.
    #[serde(rename = "g3")]
    Reparam,
    /// Sticking the landing: the score term `grad_x log q` held constant, from an inverse pass.
    #[serde(rename = "path")]
    Path,
    /// As `path`, with `grad_x log q` carried through the sampling pass layer by layer (one
    /// pass and one backward pass; no inverse pass).
    #[serde(rename = "fast-path")]
    FastPath,
}

impl Estimator {
    /// The name a config gives it.
    pub fn name(self) -> &'static str {
        match self {
            Estimator::Score => "g1",
            Estimator::ScoreBaseline => "g2",
            Estimator::Reparam => "g3",
            Estimator::Path => "path",
            Estimator::FastPath => "fast-path",
        }
    }

    /// Whether the estimator differentiates the target.
    pub fn needs_target_grad(self) -> bool {
        matches!(self, Estimator::Reparam | Estimator::Path | Estimator::FastPath)
    }
}

/// Configuration keys of `kl`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KlConfig {
    pub estimator: Estimator,
    pub batch: usize,
}

impl Default for KlConfig {
    fn default() -> Self {
        Self { estimator: Estimator::ScoreBaseline, batch: 256 }
    }
}

/// Reverse-KL objective.
pub struct ReverseKl {
    config: KlConfig,
}

impl ReverseKl {
    pub fn new(config: KlConfig) -> Result<Self> {
        if config.batch < 2 {
            return Err(Error::Config(format!("kl: batch must be at least 2, got {}", config.batch)));
        }
        Ok(Self { config })
    }

    pub fn from_config(cfg: &Value) -> Result<Self> {
        Self::new(parse_config("kl objective", cfg)?)
    }
}

impl Objective for ReverseKl {
    fn check_target(&self, target: &dyn Target) -> Result<()> {
        let est = self.config.estimator;
        if est.needs_target_grad() && !target.has_grad() {
            return Err(Error::Unsupported(format!(
                "kl estimator {} without the target's gradient (use g1 or g2)",
                est.name()
            )));
        }
        Ok(())
    }

    fn estimate(&mut self, flow: &Flow, target: &dyn Target, rng: &mut Rng) -> Result<ObjectiveOutput> {
        self.check_target(target)?;
        let est = self.config.estimator;
        let n = self.config.batch;
        let inv_n = 1.0 / n as f64;
        let mut log_p = vec![0.0; n];
        let (log_q, grad) = match est {
            Estimator::Score | Estimator::ScoreBaseline => {
                let (x, log_q) = flow.sample_with_log_q(n, rng)?;
                target.log_prob_batch(&x, &mut log_p)?;
                let s: Vec<f64> = log_q.iter().zip(&log_p).map(|(q, p)| q - p).collect();
                let baseline = if est == Estimator::ScoreBaseline { mean(&s) } else { 0.0 };
                let w: Vec<f64> = s.iter().map(|v| (v - baseline) * inv_n).collect();
                (log_q, flow.grad_theta_log_q(&x, &w)?.1)
            }
            Estimator::Reparam => {
                let path = flow.sample_path(n, rng)?;
                let mut g_x = Batch::zeros(flow.dim(), n);
                target.log_prob_grad_batch(&path.x, &mut log_p, &mut g_x)?;
                g_x *= -inv_n;
                let grad = flow.backprop_path(&path, &g_x, &vec![inv_n; n])?;
                (path.log_q, grad)
            }
            Estimator::Path => {
                let path = flow.sample_path(n, rng)?;
                let mut g_p = Batch::zeros(flow.dim(), n);
                target.log_prob_grad_batch(&path.x, &mut log_p, &mut g_p)?;
                let (_, mut g_x) = flow.grad_x_log_q(&path.x)?;
                g_x -= &g_p;
                g_x *= inv_n;
                let grad = flow.backprop_path(&path, &g_x, &vec![0.0; n])?;
                (path.log_q, grad)
            }
            Estimator::FastPath => {
                let z = flow.sample_base(n, rng);
                let path = flow.forward_scored(&z)?;
                let mut g_p = Batch::zeros(flow.dim(), n);
                target.log_prob_grad_batch(&path.out, &mut log_p, &mut g_p)?;
                let mut g_x = &path.score - &g_p;
                g_x *= inv_n;
                let grad = flow.backprop_scored(&path, &g_x)?;
                (path.log_q, grad)
            }
        };
        let log_w: Vec<f64> = log_p.iter().zip(&log_q).map(|(p, q)| p - q).collect();
        Ok(ObjectiveOutput {
            loss: -mean(&log_w),
            grad,
            metrics: vec![("ess".into(), kish_ess(&log_w).unwrap_or(f64::NAN))],
        })
    }
}
