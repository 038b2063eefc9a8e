//! Forward KL `KL(p || q)`: loss `-mean_i log q(x_i)` on samples `x_i ~ p`, drawn from the
//! target's exact sampler or from the user's files (`samples`, a training set with a held-out
//! part), with two gradient estimators (docs/metrics.md §2):
//!
//! - `ml`, maximum likelihood: `-mean_i grad_theta log q(x_i)` at fixed data;
//! - `path`, the forward-KL path gradient (Vaitl et al. 2024): `KL(p || q) = KL(p_F || q0)` with
//!   `p_F(z) = p(F(z)) |det dF/dz|` the target pulled back to the base side, differentiated along
//!   `z = F^-1(x)` with the score term dropped: `mean_i (dz_i/dtheta)^T (grad log p_F(z_i) -
//!   grad log q0(z_i))`. It needs the target's gradient at the data, has the same expectation and
//!   vanishes sample by sample at q = p. One inverse pass carries the target's score to the base
//!   side, then one backward pass ([`Flow::inverse_scored`]).

use rand::Rng as _;
use serde::Deserialize;
use serde_json::Value;

use crate::Batch;
use crate::diagnostics::importance::forward_ess;
use crate::error::{Error, Result};
use crate::flow::Flow;
use crate::model::objective::{Objective, ObjectiveOutput};
use crate::model::target::Target;
use crate::registry::parse_config;
use crate::rng::Rng;
use crate::train::sample_files::read_samples;
use crate::train::weights::mean;

/// Held-out samples evaluated at once (bounds the memory of a pass).
const TEST_CHUNK: usize = 10_000;

/// How the forward-KL gradient is estimated.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
pub enum ForwardEstimator {
    /// Maximum likelihood: the gradient of `-mean log q` at fixed data.
    #[serde(rename = "ml")]
    MaxLikelihood,
    /// The path gradient through the pulled-back target.
    #[serde(rename = "path")]
    Path,
}

/// Configuration keys of `forward-kl`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ForwardKlConfig {
    pub batch: usize,
    pub estimator: ForwardEstimator,
    /// A file or glob of training samples; without it, the target's exact sampler.
    pub samples: Option<String>,
    /// Fraction of the samples (the last ones, in file order) kept out of training; their mean
    /// `log q` is logged as `test_mean_log_q`.
    pub held_out: f64,
}

impl Default for ForwardKlConfig {
    fn default() -> Self {
        Self { batch: 256, estimator: ForwardEstimator::MaxLikelihood, samples: None, held_out: 0.1 }
    }
}

/// A training set and its held-out part, both `D x n`.
struct Dataset {
    train: Batch,
    test: Option<Batch>,
}

impl Dataset {
    fn read(pattern: &str, held_out: f64) -> Result<Self> {
        let all = read_samples(pattern)?;
        let n = all.ncols();
        // Held-out samples are the last ones, so a chain's test draws are not neighbours of its
        // training draws.
        let n_test = (held_out * n as f64).round() as usize;
        if n_test >= n {
            return Err(Error::Config(format!(
                "forward-kl: held_out = {held_out} leaves none of the {n} samples of '{pattern}' for training"
            )));
        }
        let train = all.columns(0, n - n_test).into_owned();
        let test = (n_test > 0).then(|| all.columns(n - n_test, n_test).into_owned());
        Ok(Self { train, test })
    }

    /// `n` training samples drawn uniformly with replacement.
    fn minibatch(&self, n: usize, rng: &mut Rng) -> Batch {
        let total = self.train.ncols();
        let picks: Vec<usize> = (0..n).map(|_| rng.random_range(0..total)).collect();
        Batch::from_fn(self.train.nrows(), n, |i, j| self.train[(i, picks[j])])
    }
}

/// Forward KL on target samples or the user's.
pub struct ForwardKl {
    config: ForwardKlConfig,
    data: Option<Dataset>,
}

impl ForwardKl {
    pub fn new(config: ForwardKlConfig) -> Result<Self> {
        if config.batch == 0 {
            return Err(Error::Config("forward-kl: batch must be positive".into()));
        }
        if !(0.0..1.0).contains(&config.held_out) {
            return Err(Error::Config(format!("forward-kl: held_out must be in [0, 1), not {}", config.held_out)));
        }
        let data = config.samples.as_deref().map(|p| Dataset::read(p, config.held_out)).transpose()?;
        Ok(Self { config, data })
    }

    pub fn from_config(cfg: &Value) -> Result<Self> {
        Self::new(parse_config("forward-kl objective", cfg)?)
    }

    fn draw(&self, target: &dyn Target, rng: &mut Rng) -> Result<Batch> {
        self.check_target(target)?;
        match &self.data {
            Some(d) => Ok(d.minibatch(self.config.batch, rng)),
            None => target.sample(self.config.batch, rng),
        }
    }
}

impl Objective for ForwardKl {
    fn check_target(&self, target: &dyn Target) -> Result<()> {
        match &self.data {
            Some(d) => crate::error::check_dim("coordinates of the forward-kl samples", d.train.nrows(), target.dim())?,
            None if !target.has_sampler() => {
                return Err(Error::Unsupported(
                    "forward-kl on a target without an exact sampler: give objective.samples = \"FILE_OR_GLOB\"".into(),
                ));
            }
            None => {}
        }
        if self.config.estimator == ForwardEstimator::Path && !target.has_grad() {
            return Err(Error::Unsupported(
                "forward-kl estimator = \"path\" needs the target's gradient; use \"ml\"".into(),
            ));
        }
        Ok(())
    }

    fn estimate(&mut self, flow: &Flow, target: &dyn Target, rng: &mut Rng) -> Result<ObjectiveOutput> {
        let x = self.draw(target, rng)?;
        let n = x.ncols();
        let mut log_p = vec![0.0; n];
        let (log_q, grad) = match self.config.estimator {
            ForwardEstimator::MaxLikelihood => {
                target.log_prob_batch(&x, &mut log_p)?;
                flow.grad_theta_log_q(&x, &vec![-1.0 / n as f64; n])?
            }
            ForwardEstimator::Path => {
                let mut score = Batch::zeros(x.nrows(), n);
                target.log_prob_grad_batch(&x, &mut log_p, &mut score)?;
                let pass = flow.inverse_scored(&x, &score)?;
                let g_z = (&pass.score - flow.base_grad(&pass.out)) / n as f64;
                let grad = flow.backprop_scored(&pass, &g_z)?;
                (pass.log_q, grad)
            }
        };
        // The forward ESS fraction exposes missed modes.
        let log_w: Vec<f64> = log_p.iter().zip(&log_q).map(|(p, q)| p - q).collect();
        let fwd_ess = forward_ess(&log_w).unwrap_or(f64::NAN);
        Ok(ObjectiveOutput { loss: -mean(&log_q), grad, metrics: vec![("ess".into(), fwd_ess)] })
    }

    fn log_metrics(&mut self, flow: &Flow) -> Result<Vec<(String, f64)>> {
        match self.data.as_ref().and_then(|d| d.test.as_ref()) {
            Some(test) => {
                let mut log_q = Vec::with_capacity(test.ncols());
                for start in (0..test.ncols()).step_by(TEST_CHUNK) {
                    log_q.extend(flow.log_q(&test.columns(start, TEST_CHUNK.min(test.ncols() - start)).into_owned())?);
                }
                Ok(vec![("test_mean_log_q".into(), mean(&log_q))])
            }
            None => Ok(Vec::new()),
        }
    }
}
