//! Multivariate normal target, diagonal or with a full covariance (normalised: log Z = 0).

use std::f64::consts::PI;
use std::sync::Arc;

use nalgebra::DMatrix;
use serde::Deserialize;
use serde_json::Value;

use crate::Batch;
use crate::error::{Error, Result, check_dim};
use crate::model::target::Target;
use crate::registry::{Registry, Source, parse_config};
use crate::rng::{Rng, fill_normal};

/// A config value given either as one number for every coordinate or as a list.
#[derive(Deserialize, Clone, Debug)]
#[serde(untagged)]
pub enum ScalarOrList {
    Scalar(f64),
    List(Vec<f64>),
}

impl ScalarOrList {
    fn len(&self) -> Option<usize> {
        match self {
            ScalarOrList::Scalar(_) => None,
            ScalarOrList::List(v) => Some(v.len()),
        }
    }
    fn expand(&self, dim: usize) -> Vec<f64> {
        match self {
            ScalarOrList::Scalar(s) => vec![*s; dim],
            ScalarOrList::List(v) => v.clone(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GaussianConfig {
    dim: Option<usize>,
    mean: Option<ScalarOrList>,
    std: Option<ScalarOrList>,
    cov: Option<Vec<Vec<f64>>>,
}

/// Shape of the covariance; the full form keeps the Cholesky factor (sampling) and the precision
/// matrix (density and gradient without solving per call).
enum Scale {
    Diagonal { std: Vec<f64>, inv_var: Vec<f64> },
    Full { chol: DMatrix<f64>, precision: DMatrix<f64> },
}

/// `N(mean, cov)` on R^dim.
pub struct Gaussian {
    mean: Vec<f64>,
    scale: Scale,
    /// `-(1/2) log det(2 pi cov)`.
    log_norm: f64,
}

fn half_log_2pi() -> f64 {
    0.5 * (2.0 * PI).ln()
}

impl Gaussian {
    /// Independent coordinates `N(mean_i, std_i^2)`.
    pub fn diagonal(mean: Vec<f64>, std: Vec<f64>) -> Result<Self> {
        check_dim("gaussian std length", std.len(), mean.len())?;
        check_finite("gaussian mean", &mean)?;
        if let Some((i, s)) = std.iter().enumerate().find(|(_, s)| !(s.is_finite() && **s > 0.0)) {
            return Err(Error::Config(format!("gaussian: std[{i}] = {s} must be positive and finite")));
        }
        let log_norm = -std.iter().map(|s| s.ln() + half_log_2pi()).sum::<f64>();
        let inv_var = std.iter().map(|s| 1.0 / (s * s)).collect();
        Ok(Self { mean, scale: Scale::Diagonal { std, inv_var }, log_norm })
    }

    /// Correlated `N(mean, cov)`; `cov` must be symmetric positive definite.
    pub fn correlated(mean: Vec<f64>, cov: DMatrix<f64>) -> Result<Self> {
        let d = mean.len();
        check_dim("gaussian cov rows", cov.nrows(), d)?;
        check_dim("gaussian cov columns", cov.ncols(), d)?;
        check_finite("gaussian mean", &mean)?;
        check_finite("gaussian cov", cov.as_slice())?;
        let asym = (&cov - cov.transpose()).abs().max();
        if asym > 1e-12 * (1.0 + cov.abs().max()) {
            return Err(Error::Config(format!("gaussian: cov is not symmetric (largest asymmetry {asym:e})")));
        }
        let chol = cov.cholesky().ok_or_else(|| Error::Config("gaussian: cov is not positive definite".into()))?;
        let precision = chol.inverse();
        let l = chol.unpack();
        let log_norm = -(0..d).map(|i| l[(i, i)].ln() + half_log_2pi()).sum::<f64>();
        Ok(Self { mean, scale: Scale::Full { chol: l, precision }, log_norm })
    }

    /// Builds the target from its config (see the module's registration for the keys).
    pub fn from_config(cfg: &Value) -> Result<Self> {
        let c: GaussianConfig = parse_config("gaussian", cfg)?;
        let sizes = [
            ("dim", c.dim),
            ("mean", c.mean.as_ref().and_then(ScalarOrList::len)),
            ("std", c.std.as_ref().and_then(ScalarOrList::len)),
            ("cov", c.cov.as_ref().map(Vec::len)),
        ];
        let mut dim = None;
        for (key, size) in sizes {
            match (dim, size) {
                (None, Some(n)) => dim = Some((key, n)),
                (Some((first, d)), Some(n)) if n != d => {
                    return Err(Error::Config(format!("gaussian: {key} has length {n} but {first} says {d}")));
                }
                _ => {}
            }
        }
        let dim = match dim {
            Some((_, 0)) | None => {
                return Err(Error::Config("gaussian: give dim >= 1 (or a mean, std or cov list)".into()));
            }
            Some((_, d)) => d,
        };
        let mean = c.mean.unwrap_or(ScalarOrList::Scalar(0.0)).expand(dim);
        match (c.std, c.cov) {
            (Some(_), Some(_)) => Err(Error::Config("gaussian: give either std or cov, not both".into())),
            (_, Some(rows)) => {
                if let Some(i) = rows.iter().position(|r| r.len() != dim) {
                    return Err(Error::Config(format!(
                        "gaussian: cov row {i} has length {}, expected {dim}",
                        rows[i].len()
                    )));
                }
                Self::correlated(mean, DMatrix::from_fn(dim, dim, |i, j| rows[i][j]))
            }
            (std, None) => Self::diagonal(mean, std.unwrap_or(ScalarOrList::Scalar(1.0)).expand(dim)),
        }
    }

    #[cfg(test)]
    /// The mean vector.
    pub fn mean(&self) -> &[f64] {
        &self.mean
    }

    /// The covariance matrix.
    #[cfg(test)]
    pub fn covariance(&self) -> DMatrix<f64> {
        match &self.scale {
            Scale::Diagonal { std, .. } => {
                DMatrix::from_diagonal(&nalgebra::DVector::from_iterator(std.len(), std.iter().map(|s| s * s)))
            }
            Scale::Full { chol, .. } => chol * chol.transpose(),
        }
    }

    fn check_point(&self, x: &[f64], grad: Option<&[f64]>) -> Result<()> {
        check_dim("gaussian point", x.len(), self.mean.len())?;
        grad.map_or(Ok(()), |g| check_dim("gaussian gradient", g.len(), self.mean.len()))
    }
}

fn check_finite(what: &str, v: &[f64]) -> Result<()> {
    match v.iter().position(|a| !a.is_finite()) {
        Some(i) => Err(Error::Config(format!("{what}: entry {i} is not finite"))),
        None => Ok(()),
    }
}

impl Target for Gaussian {
    fn dim(&self) -> usize {
        self.mean.len()
    }

    fn log_prob(&self, x: &[f64]) -> Result<f64> {
        self.check_point(x, None)?;
        let quad = match &self.scale {
            Scale::Diagonal { inv_var, .. } => {
                x.iter().zip(&self.mean).zip(inv_var).map(|((a, m), p)| (a - m) * (a - m) * p).sum::<f64>()
            }
            Scale::Full { precision, .. } => {
                let d = self.mean.len();
                (0..d)
                    .map(|i| {
                        let pr: f64 = (0..d).map(|j| precision[(i, j)] * (x[j] - self.mean[j])).sum();
                        (x[i] - self.mean[i]) * pr
                    })
                    .sum()
            }
        };
        Ok(self.log_norm - 0.5 * quad)
    }

    fn has_grad(&self) -> bool {
        true
    }

    fn log_prob_grad(&self, x: &[f64], grad: &mut [f64]) -> Result<f64> {
        self.check_point(x, Some(grad))?;
        // grad = -P (x - mean); then (x - mean)^T P (x - mean) = -(x - mean) . grad.
        match &self.scale {
            Scale::Diagonal { inv_var, .. } => {
                for i in 0..x.len() {
                    grad[i] = -(x[i] - self.mean[i]) * inv_var[i];
                }
            }
            Scale::Full { precision, .. } => {
                for (i, g) in grad.iter_mut().enumerate() {
                    *g = -(0..x.len()).map(|j| precision[(i, j)] * (x[j] - self.mean[j])).sum::<f64>();
                }
            }
        }
        let quad: f64 = -x.iter().zip(&self.mean).zip(grad.iter()).map(|((a, m), g)| (a - m) * g).sum::<f64>();
        Ok(self.log_norm - 0.5 * quad)
    }

    fn has_sampler(&self) -> bool {
        true
    }

    fn sample(&self, n: usize, rng: &mut Rng) -> Result<Batch> {
        let d = self.mean.len();
        let mut z = Batch::zeros(d, n);
        fill_normal(rng, z.as_mut_slice());
        let mut x = match &self.scale {
            Scale::Diagonal { std, .. } => {
                for mut col in z.column_iter_mut() {
                    col.iter_mut().zip(std).for_each(|(v, s)| *v *= s);
                }
                z
            }
            Scale::Full { chol, .. } => chol * z,
        };
        for mut col in x.column_iter_mut() {
            col.iter_mut().zip(&self.mean).for_each(|(v, m)| *v += m);
        }
        Ok(x)
    }

    fn log_z(&self) -> Option<f64> {
        Some(0.0)
    }
}

/// Registers `gaussian`.
pub fn register(reg: &mut Registry) -> Result<()> {
    reg.add_target(
        "gaussian",
        Source::Builtin,
        "normal distribution (keys: dim, mean, std or cov; mean/std a number or a list); log Z = 0",
        Arc::new(|cfg: &Value| Ok(Box::new(Gaussian::from_config(cfg)?) as Box<dyn Target>)),
    )
}

#[cfg(test)]
#[path = "gaussian_tests.rs"]
mod tests;
