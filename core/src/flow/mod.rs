//! The normalizing flow: a fixed diagonal-Gaussian base and a stack of bijections.
//!
//! `x = F(z) = F_{L-1}(... F_0(z))`, `log q(x) = log q0(z) - sum_k log|det dF_k|`.
//! Every batched method splits columns into fixed shards and runs them in parallel (see
//! [`crate::shard`]); parameter gradients are summed over shards in shard order.

use crate::Batch;
use crate::error::{Error, Result, check_dim};
use crate::model::bijection::Bijection;
use crate::rng::Rng;
use crate::shard;

const LN_2PI: f64 = 1.837_877_066_409_345_3;

pub mod affine;
mod base;
pub mod cholesky;
mod inverse;
mod pathwise;
mod scored;

pub use inverse::{InverseGrads, InverseRecord};
pub use pathwise::PathSample;
pub use scored::ScoredPass;

/// A normalizing flow `q_theta`.
pub struct Flow {
    dim: usize,
    base_mean: Vec<f64>,
    base_std: Vec<f64>,
    layers: Vec<Box<dyn Bijection>>,
    offsets: Vec<usize>,
    /// Columns per shard; `None`: [`shard::default_size`] of each batch.
    shard: Option<usize>,
}

impl Flow {
    /// A flow with a standard normal base.
    pub fn new(dim: usize, layers: Vec<Box<dyn Bijection>>) -> Result<Self> {
        Self::with_base(vec![0.0; dim], vec![1.0; dim], layers)
    }

    /// A flow with base `N(mean, diag(std^2))`.
    pub fn with_base(base_mean: Vec<f64>, base_std: Vec<f64>, layers: Vec<Box<dyn Bijection>>) -> Result<Self> {
        let dim = base_mean.len();
        check_dim("base std length", base_std.len(), dim)?;
        if base_std.iter().any(|s| !(*s > 0.0 && s.is_finite())) {
            return Err(Error::Config("flow.base_std must be positive and finite".into()));
        }
        let mut offsets = vec![0];
        for (k, l) in layers.iter().enumerate() {
            check_dim(&format!("dimension of layer {k}"), l.dim(), dim)?;
            offsets.push(offsets[k] + l.n_params());
        }
        Ok(Self { dim, base_mean, base_std, layers, offsets, shard: None })
    }

    /// Sets the number of columns per parallel shard (results depend on it, not on threads).
    pub fn with_shard_size(mut self, shard: usize) -> Self {
        self.shard = Some(shard.max(1));
        self
    }

    /// Columns per shard for a batch of `n`.
    pub fn shard_size(&self, n: usize) -> usize {
        self.shard.unwrap_or_else(|| shard::default_size(n))
    }

    /// Dimension of the base and of the samples.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The bijections in application order (`F_0` first).
    pub fn layers(&self) -> &[Box<dyn Bijection>] {
        &self.layers
    }

    /// Total number of parameters.
    pub fn n_params(&self) -> usize {
        *self.offsets.last().unwrap()
    }

    /// All parameters, layer by layer.
    pub fn params(&self) -> Vec<f64> {
        let mut p = Vec::with_capacity(self.n_params());
        for l in &self.layers {
            p.extend(l.params());
        }
        p
    }

    /// Replaces all parameters (layout of [`Flow::params`]).
    pub fn set_params(&mut self, p: &[f64]) -> Result<()> {
        check_dim("flow parameters", p.len(), self.n_params())?;
        for (k, l) in self.layers.iter_mut().enumerate() {
            l.set_params(&p[self.offsets[k]..self.offsets[k + 1]])?;
        }
        Ok(())
    }

    /// Pushes base points through the flow: `(x, log q(x))`.
    pub fn push_forward(&self, z: &Batch) -> Result<(Batch, Vec<f64>)> {
        check_dim("flow input rows", z.nrows(), self.dim)?;
        let n = z.ncols();
        let parts = shard::map(n, self.shard_size(n), |r| {
            let mut x = shard::columns(z, r);
            let mut log_q = self.base_log_prob(&x);
            for l in &self.layers {
                let p = l.forward(&x, false)?;
                log_q.iter_mut().zip(&p.log_det).for_each(|(a, b)| *a -= b);
                x = p.out;
            }
            Ok((x, log_q))
        })?;
        Ok(self.join(n, parts))
    }

    /// `n` samples `x ~ q` with their `log q(x)`.
    pub fn sample_with_log_q(&self, n: usize, rng: &mut Rng) -> Result<(Batch, Vec<f64>)> {
        let z = self.sample_base(n, rng);
        self.push_forward(&z)
    }

    fn join(&self, n: usize, parts: Vec<(Batch, Vec<f64>)>) -> (Batch, Vec<f64>) {
        let ranges = shard::ranges(n, self.shard_size(n));
        let mut log_q = Vec::with_capacity(n);
        let mut xs = Vec::with_capacity(parts.len());
        for (x, lq) in parts {
            xs.push(x);
            log_q.extend(lq);
        }
        (shard::concat_columns(self.dim, n, &ranges, xs), log_q)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::affine::ElementwiseAffine;
    use crate::testing;

    fn flow(dim: usize, layers: usize, seed: u64) -> Flow {
        let mut r = crate::rng::stream(seed, 0);
        let ls: Vec<Box<dyn Bijection>> = (0..layers)
            .map(|_| {
                let mut l = ElementwiseAffine::new(dim);
                testing::randomise_params(&mut l, 0.4, &mut r).unwrap();
                Box::new(l) as Box<dyn Bijection>
            })
            .collect();
        Flow::with_base(vec![0.3; dim], vec![1.5; dim], ls).unwrap().with_shard_size(3)
    }

    #[test]
    fn flow_gradients_match_finite_differences() {
        let mut f = flow(3, 2, 4);
        let mut r = crate::rng::stream(5, 0);
        let x = testing::random_batch(3, 7, &mut r);
        let w: Vec<f64> = (0..7).map(|i| 0.5 + i as f64).collect();
        let report = testing::check_flow(&mut f, &x, &w, 1e-6).unwrap();
        assert!(report.grad_theta > 0.0, "a check that measured nothing: {report:?}");
    }

    #[test]
    fn shard_size_does_not_change_values() {
        let f = flow(2, 2, 9);
        let mut r = crate::rng::stream(1, 0);
        let x = testing::random_batch(2, 10, &mut r);
        let a = f.log_q(&x).unwrap();
        let g = Flow { shard: Some(1000), ..flow(2, 2, 9) };
        let b = g.log_q(&x).unwrap();
        for (u, v) in a.iter().zip(&b) {
            assert!((u - v).abs() < 1e-14);
        }
    }

    #[test]
    fn identity_flow_log_q_is_base() {
        let f = Flow::new(4, vec![Box::new(ElementwiseAffine::new(4))]).unwrap();
        let mut r = crate::rng::stream(2, 0);
        let x = testing::random_batch(4, 5, &mut r);
        let lq = f.log_q(&x).unwrap();
        let base = f.base_log_prob(&x);
        assert_eq!(lq, base);
    }
}
