//! Targets: unnormalised log-densities `log p~(x)`.

use crate::Batch;
use crate::error::{Error, Result, check_dim};
use crate::rng::Rng;

/// An unnormalised log-density on R^dim.
///
/// Implementors write the single-point methods; the batched forms loop over columns by default
/// and may be overridden (a plugin overrides them so that one call crosses the C boundary per
/// batch). `-inf` is a legal value ("outside the support"); NaN is an error the caller reports.
pub trait Target: Send + Sync {
    /// Dimension of a sample.
    fn dim(&self) -> usize;

    /// `log p~(x)` for one point (`x.len() == dim`).
    fn log_prob(&self, x: &[f64]) -> Result<f64>;

    /// Whether [`Target::log_prob_grad`] is available.
    fn has_grad(&self) -> bool {
        false
    }

    /// `log p~(x)`, writing `d log p~ / dx` into `grad`.
    fn log_prob_grad(&self, _x: &[f64], _grad: &mut [f64]) -> Result<f64> {
        Err(Error::Unsupported("gradient of this target".into()))
    }

    /// `log p~` of every column of `x` into `out`.
    fn log_prob_batch(&self, x: &Batch, out: &mut [f64]) -> Result<()> {
        check_batch(self.dim(), x, out.len())?;
        for (j, o) in out.iter_mut().enumerate() {
            *o = self.log_prob(x.column(j).as_slice())?;
        }
        Ok(())
    }

    /// `log p~` and its gradient for every column of `x`.
    fn log_prob_grad_batch(&self, x: &Batch, out: &mut [f64], grad: &mut Batch) -> Result<()> {
        check_batch(self.dim(), x, out.len())?;
        check_dim("gradient rows", grad.nrows(), x.nrows())?;
        check_dim("gradient columns", grad.ncols(), x.ncols())?;
        for (j, o) in out.iter_mut().enumerate() {
            *o = self.log_prob_grad(x.column(j).as_slice(), grad.column_mut(j).as_mut_slice())?;
        }
        Ok(())
    }

    /// Whether [`Target::sample`] draws exact samples.
    fn has_sampler(&self) -> bool {
        false
    }

    /// `n` exact samples from the normalised target.
    fn sample(&self, _n: usize, _rng: &mut Rng) -> Result<Batch> {
        Err(Error::Unsupported("exact sampling from this target".into()))
    }

    /// `log Z = log integral p~`, where known in closed form.
    fn log_z(&self) -> Option<f64> {
        None
    }

    /// Names of the per-sample observables this target defines (e.g. magnetisation).
    fn observable_names(&self) -> Vec<String> {
        Vec::new()
    }

    /// Observables of one point, in the order of [`Target::observable_names`].
    fn observables(&self, _x: &[f64], _out: &mut [f64]) -> Result<()> {
        Ok(())
    }

    /// Exact expectations of observables under p, where known: `(name, value)`.
    fn known_means(&self) -> Vec<(String, f64)> {
        Vec::new()
    }

    /// A fixed set of test points (e.g. Many Well mode centres) whose mean `log q` measures a flow.
    fn test_set(&self) -> Option<Batch> {
        None
    }
}

fn check_batch(dim: usize, x: &Batch, n: usize) -> Result<()> {
    check_dim("sample dimension", x.nrows(), dim)?;
    check_dim("output length", n, x.ncols())
}

/// A log-density evaluated batch-wise, optionally with its gradient: what an MCMC kernel moves on.
/// Targets, AIS intermediate densities and flow densities all present themselves this way.
pub trait LogDensity: Sync {
    /// Dimension of a point.
    fn dim(&self) -> usize;
    /// Log density of each column into `out`; with `grad`, also its gradient per column.
    fn eval(&self, x: &Batch, out: &mut [f64], grad: Option<&mut Batch>) -> Result<()>;
}

/// A [`Target`] seen as a [`LogDensity`].
pub struct TargetDensity<'a>(pub &'a dyn Target);

impl LogDensity for TargetDensity<'_> {
    fn dim(&self) -> usize {
        self.0.dim()
    }
    fn eval(&self, x: &Batch, out: &mut [f64], grad: Option<&mut Batch>) -> Result<()> {
        match grad {
            Some(g) => self.0.log_prob_grad_batch(x, out, g),
            None => self.0.log_prob_batch(x, out),
        }
    }
}

/// Returns an error naming the first NaN in `values`, if any (`-inf` is allowed).
pub fn reject_nan(what: &str, values: &[f64]) -> Result<()> {
    match values.iter().position(|v| v.is_nan()) {
        Some(i) => Err(Error::NonFinite(format!("{what} is NaN at sample {i}"))),
        None => Ok(()),
    }
}
