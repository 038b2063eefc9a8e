//! Mixture of Gaussians with diagonal covariances, any dimension and number of components;
//! normalised (log Z = 0), exact sampler, gradient by a one-pass log-sum-exp.

use std::f64::consts::PI;
use std::sync::Arc;

use rand::Rng as _;
use serde::Deserialize;
use serde_json::Value;

use super::mixture_csv;
use super::test_function::QuadraticTestFunction;
use crate::Batch;
use crate::error::{Error, Result, check_dim};
use crate::model::target::Target;
use crate::registry::{Registry, Source, parse_config};
use crate::rng::{Rng, fill_normal};

/// `sum_k w_k N(x; mu_k, diag(sigma_k^2))` with weights normalised to sum to one.
pub struct GaussianMixture {
    dim: usize,
    weights: Vec<f64>,
    /// Component-major: `means[k * dim + i]`.
    means: Vec<f64>,
    stds: Vec<f64>,
    inv_var: Vec<f64>,
    /// `log w_k - sum_i log sigma_ki - (dim/2) log 2 pi`.
    log_coef: Vec<f64>,
    /// Cumulative weights, for drawing a component.
    cumulative: Vec<f64>,
    test_function: Option<QuadraticTestFunction>,
}

impl GaussianMixture {
    /// A mixture of `weights.len()` components; weights need only be positive (they are
    /// normalised), every std positive.
    pub fn new(weights: Vec<f64>, means: Vec<Vec<f64>>, stds: Vec<Vec<f64>>) -> Result<Self> {
        let k = weights.len();
        if k == 0 {
            return Err(Error::Config("mixture: no components".into()));
        }
        check_dim("mixture means", means.len(), k)?;
        check_dim("mixture stds", stds.len(), k)?;
        let dim = means[0].len();
        if dim == 0 {
            return Err(Error::Config("mixture: components have dimension 0".into()));
        }
        for (c, (m, s)) in means.iter().zip(&stds).enumerate() {
            if m.len() != dim || s.len() != dim {
                return Err(Error::Config(format!("mixture: component {c} does not have dimension {dim}")));
            }
            if m.iter().any(|v| !v.is_finite()) {
                return Err(Error::Config(format!("mixture: mean of component {c} is not finite")));
            }
            if let Some(v) = s.iter().find(|v| !(v.is_finite() && **v > 0.0)) {
                return Err(Error::Config(format!("mixture: std {v} of component {c} must be positive and finite")));
            }
        }
        if let Some((c, w)) = weights.iter().enumerate().find(|(_, w)| !(w.is_finite() && **w > 0.0)) {
            return Err(Error::Config(format!("mixture: weight {w} of component {c} must be positive and finite")));
        }
        let total: f64 = weights.iter().sum();
        let weights: Vec<f64> = weights.iter().map(|w| w / total).collect();
        let stds: Vec<f64> = stds.into_iter().flatten().collect();
        let half_log_2pi = 0.5 * (2.0 * PI).ln();
        let log_coef = weights
            .iter()
            .enumerate()
            .map(|(c, w)| w.ln() - stds[c * dim..(c + 1) * dim].iter().map(|s| s.ln() + half_log_2pi).sum::<f64>())
            .collect();
        let cumulative = weights
            .iter()
            .scan(0.0, |acc, w| {
                *acc += w;
                Some(*acc)
            })
            .collect();
        Ok(Self {
            dim,
            inv_var: stds.iter().map(|s| 1.0 / (s * s)).collect(),
            means: means.into_iter().flatten().collect(),
            stds,
            weights,
            log_coef,
            cumulative,
            test_function: None,
        })
    }

    /// Reads the components from CSV text (see [`mixture_csv`]); `std` fills in when the file
    /// has no `std_*` columns.
    pub fn from_csv(text: &str, origin: &str, std: Option<f64>) -> Result<Self> {
        let c = mixture_csv::parse(text, origin)?;
        let stds = match (c.stds.is_empty(), std) {
            (false, None) => c.stds,
            (true, Some(s)) => vec![vec![s; c.means[0].len()]; c.means.len()],
            (false, Some(_)) => return Err(Error::Config(format!("{origin} has std_* columns: drop the std key"))),
            (true, None) => return Err(Error::Config(format!("{origin} has no std_* columns: give std"))),
        };
        Self::new(c.weights, c.means, stds)
    }

    /// Attaches the observable `f` with its exact mean.
    pub fn with_test_function(mut self, f: QuadraticTestFunction) -> Result<Self> {
        f.validate(self.dim)?;
        self.test_function = Some(f);
        Ok(self)
    }

    #[cfg(test)]
    /// Normalised component weights.
    pub fn weights(&self) -> &[f64] {
        &self.weights
    }

    /// Mean of component `k`.
    pub fn mean(&self, k: usize) -> &[f64] {
        &self.means[k * self.dim..(k + 1) * self.dim]
    }

    /// Standard deviations of component `k`.
    pub fn std(&self, k: usize) -> &[f64] {
        &self.stds[k * self.dim..(k + 1) * self.dim]
    }

    /// Log density of component `k` including its weight.
    fn component_log(&self, k: usize, x: &[f64]) -> f64 {
        let (m, p) = (self.mean(k), &self.inv_var[k * self.dim..(k + 1) * self.dim]);
        self.log_coef[k] - 0.5 * x.iter().zip(m).zip(p).map(|((a, b), q)| (a - b) * (a - b) * q).sum::<f64>()
    }
}

impl Target for GaussianMixture {
    fn dim(&self) -> usize {
        self.dim
    }

    fn log_prob(&self, x: &[f64]) -> Result<f64> {
        check_dim("mixture point", x.len(), self.dim)?;
        let max = (0..self.weights.len()).map(|k| self.component_log(k, x)).fold(f64::NEG_INFINITY, f64::max);
        if max == f64::NEG_INFINITY {
            // So far out that every component's square overflows: outside the support in f64.
            return Ok(max);
        }
        let sum: f64 = (0..self.weights.len()).map(|k| (self.component_log(k, x) - max).exp()).sum();
        Ok(max + sum.ln())
    }

    fn has_grad(&self) -> bool {
        true
    }

    fn log_prob_grad(&self, x: &[f64], grad: &mut [f64]) -> Result<f64> {
        check_dim("mixture point", x.len(), self.dim)?;
        check_dim("mixture gradient", grad.len(), self.dim)?;
        // Streaming log-sum-exp: `sum` and `grad` are kept relative to the running maximum and
        // rescaled when it grows, so no component term overflows and nothing is allocated.
        grad.fill(0.0);
        let (mut max, mut sum) = (f64::NEG_INFINITY, 0.0);
        for k in 0..self.weights.len() {
            let lk = self.component_log(k, x);
            if lk == f64::NEG_INFINITY {
                // A component whose square overflowed adds nothing (and `-inf - -inf` is NaN).
                continue;
            }
            if lk > max {
                let rescale = (max - lk).exp();
                sum *= rescale;
                grad.iter_mut().for_each(|g| *g *= rescale);
                max = lk;
            }
            let e = (lk - max).exp();
            sum += e;
            let (m, p) = (self.mean(k), &self.inv_var[k * self.dim..(k + 1) * self.dim]);
            for i in 0..self.dim {
                grad[i] -= e * (x[i] - m[i]) * p[i];
            }
        }
        if max == f64::NEG_INFINITY {
            grad.fill(0.0);
            return Ok(max);
        }
        grad.iter_mut().for_each(|g| *g /= sum);
        Ok(max + sum.ln())
    }

    fn has_sampler(&self) -> bool {
        true
    }

    fn sample(&self, n: usize, rng: &mut Rng) -> Result<Batch> {
        let mut x = Batch::zeros(self.dim, n);
        fill_normal(rng, x.as_mut_slice());
        for mut col in x.column_iter_mut() {
            let u: f64 = rng.random();
            let k = self.cumulative.partition_point(|c| *c <= u).min(self.weights.len() - 1);
            for (i, v) in col.iter_mut().enumerate() {
                *v = self.mean(k)[i] + self.std(k)[i] * *v;
            }
        }
        Ok(x)
    }

    fn log_z(&self) -> Option<f64> {
        Some(0.0)
    }

    fn observable_names(&self) -> Vec<String> {
        self.test_function.iter().map(|_| "f".to_string()).collect()
    }

    fn observables(&self, x: &[f64], out: &mut [f64]) -> Result<()> {
        if let Some(f) = &self.test_function {
            check_dim("mixture point", x.len(), self.dim)?;
            check_dim("observables", out.len(), 1)?;
            out[0] = f.value(x);
        }
        Ok(())
    }

    fn known_means(&self) -> Vec<(String, f64)> {
        let Some(f) = &self.test_function else { return Vec::new() };
        let e = (0..self.weights.len()).map(|k| self.weights[k] * f.gaussian_mean(self.mean(k), self.std(k))).sum();
        vec![("f".to_string(), e)]
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MixtureConfig {
    data: Option<String>,
    weights: Option<Vec<f64>>,
    means: Option<Vec<Vec<f64>>>,
    stds: Option<Vec<Vec<f64>>>,
    std: Option<f64>,
    test_function: Option<QuadraticTestFunction>,
}

impl GaussianMixture {
    /// Builds a mixture from its config: `data` (CSV path) or `means` (+ `weights`, `stds` or a
    /// common `std`), optionally a `test_function` `{shift, a, b}`.
    pub fn from_config(cfg: &Value) -> Result<Self> {
        let c: MixtureConfig = parse_config("mixture", cfg)?;
        let mix = match (c.data, c.means) {
            (Some(path), None) => {
                if c.weights.is_some() || c.stds.is_some() {
                    return Err(Error::Config("mixture: weights and stds come from the data file".into()));
                }
                let text = crate::run::input::read_text(
                    std::path::Path::new(&path),
                    "mixture data",
                    crate::run::input::data_limit(),
                )?;
                Self::from_csv(&text, &path, c.std)?
            }
            (None, Some(means)) => {
                let weights = c.weights.unwrap_or_else(|| vec![1.0; means.len()]);
                let stds = match (c.stds, c.std) {
                    (Some(s), None) => s,
                    (None, s) => means.iter().map(|m| vec![s.unwrap_or(1.0); m.len()]).collect(),
                    (Some(_), Some(_)) => return Err(Error::Config("mixture: give std or stds, not both".into())),
                };
                Self::new(weights, means, stds)?
            }
            (Some(_), Some(_)) => return Err(Error::Config("mixture: give data or means, not both".into())),
            (None, None) => return Err(Error::Config("mixture: give data (a CSV file) or means".into())),
        };
        match c.test_function {
            Some(f) => mix.with_test_function(f),
            None => Ok(mix),
        }
    }
}

/// Registers `mixture`.
pub fn register(reg: &mut Registry) -> Result<()> {
    reg.add_target(
        "mixture",
        Source::Builtin,
        "diagonal Gaussian mixture (keys: data = CSV file, or means [+ weights, stds | std]; test_function)",
        Arc::new(|cfg: &Value| Ok(Box::new(GaussianMixture::from_config(cfg)?) as Box<dyn Target>)),
    )
}

#[cfg(test)]
#[path = "mixture_tests.rs"]
mod tests;
