//! Forward KL `KL(p || q)` on exact target samples: loss `-mean_i log q(x_i)`, `x_i ~ p`.

use serde::Deserialize;
use serde_json::Value;

use crate::diagnostics::importance::log_sum_exp;
use crate::error::{Error, Result};
use crate::flow::Flow;
use crate::model::objective::{Objective, ObjectiveOutput};
use crate::model::target::Target;
use crate::registry::parse_config;
use crate::rng::Rng;
use crate::train::weights::mean;

/// Configuration keys of `forward-kl`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ForwardKlConfig {
    pub batch: usize,
}

impl Default for ForwardKlConfig {
    fn default() -> Self {
        Self { batch: 256 }
    }
}

/// Maximum likelihood on target samples.
pub struct ForwardKl {
    config: ForwardKlConfig,
}

impl ForwardKl {
    pub fn new(config: ForwardKlConfig) -> Result<Self> {
        if config.batch == 0 {
            return Err(Error::Config("forward-kl: batch must be positive".into()));
        }
        Ok(Self { config })
    }

    pub fn from_config(cfg: &Value) -> Result<Self> {
        Self::new(parse_config("forward-kl objective", cfg)?)
    }
}

impl Objective for ForwardKl {
    fn estimate(&mut self, flow: &Flow, target: &dyn Target, rng: &mut Rng) -> Result<ObjectiveOutput> {
        if !target.has_sampler() {
            return Err(Error::Unsupported("forward-kl on a target without an exact sampler".into()));
        }
        let n = self.config.batch;
        let x = target.sample(n, rng)?;
        let (log_q, grad) = flow.grad_theta_log_q(&x, &vec![-1.0 / n as f64; n])?;
        // Forward ESS fraction on exact samples, N^2 / (sum w * sum 1/w), exposes missed modes.
        let mut log_p = vec![0.0; n];
        target.log_prob_batch(&x, &mut log_p)?;
        let log_w: Vec<f64> = log_p.iter().zip(&log_q).map(|(p, q)| p - q).collect();
        let neg: Vec<f64> = log_w.iter().map(|v| -v).collect();
        let fwd_ess = (2.0 * (n as f64).ln() - log_sum_exp(&log_w) - log_sum_exp(&neg)).exp();
        Ok(ObjectiveOutput { loss: -mean(&log_q), grad, metrics: vec![("ess".into(), fwd_ess)] })
    }
}
