//! The normalizing flow: a fixed diagonal-Gaussian base and a stack of bijections.
//!
//! `x = F(z) = F_{L-1}(... F_0(z))`, `log q(x) = log q0(z) - sum_k log|det dF_k|`.
//! Every batched method splits columns into fixed shards and runs them in parallel (see
//! [`crate::shard`]); parameter gradients are summed over shards in shard order.

use crate::Batch;
use crate::bijection::{Bijection, Cotangent, Direction, Tape};
use crate::error::{Error, Result, check_dim};
use crate::rng::{Rng, fill_normal};
use crate::shard;

const LN_2PI: f64 = 1.837_877_066_409_345_3;

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

/// A recorded inverse pass (see [`Flow::inverse_record`]): base points and tapes per shard.
pub struct InverseRecord {
    pub log_q: Vec<f64>,
    shards: Vec<(Batch, Vec<Tape>)>,
    ranges: Vec<(usize, usize)>,
}

/// A batch drawn through the flow with everything needed to differentiate the sampling path.
pub struct PathSample {
    pub z: Batch,
    pub x: Batch,
    pub log_q: Vec<f64>,
    tapes: Vec<Vec<Tape>>,
    ranges: Vec<(usize, usize)>,
}

/// Values of the inverse pass and the requested derivatives.
pub struct InverseGrads {
    pub log_q: Vec<f64>,
    /// `sum_i w_i d log q(x_i) / d theta`, when asked for.
    pub grad_theta: Option<Vec<f64>>,
    /// `d log q(x_i) / d x_i` per column, when asked for (unweighted).
    pub grad_x: Option<Batch>,
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
            return Err(Error::Config("base std must be positive and finite".into()));
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

    pub fn dim(&self) -> usize {
        self.dim
    }

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

    /// Base log-density of each column of `z`.
    pub fn base_log_prob(&self, z: &Batch) -> Vec<f64> {
        let norm: f64 = self.base_std.iter().map(|s| s.ln()).sum::<f64>() + 0.5 * self.dim as f64 * LN_2PI;
        z.column_iter()
            .map(|c| {
                let q: f64 =
                    c.iter().zip(&self.base_mean).zip(&self.base_std).map(|((v, m), s)| ((v - m) / s).powi(2)).sum();
                -0.5 * q - norm
            })
            .collect()
    }

    /// `n` draws from the base.
    pub fn sample_base(&self, n: usize, rng: &mut Rng) -> Batch {
        let mut z = Batch::zeros(self.dim, n);
        fill_normal(rng, z.as_mut_slice());
        for mut c in z.column_iter_mut() {
            for i in 0..self.dim {
                c[i] = self.base_mean[i] + self.base_std[i] * c[i];
            }
        }
        z
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

    /// `log q(x)` of each column, by the inverse pass.
    pub fn log_q(&self, x: &Batch) -> Result<Vec<f64>> {
        Ok(self.inverse_grads(x, None, false)?.log_q)
    }

    /// `log q(x)` and `sum_i w_i d log q(x_i) / d theta` at fixed `x` (differentiates the inverse pass).
    pub fn grad_theta_log_q(&self, x: &Batch, weights: &[f64]) -> Result<(Vec<f64>, Vec<f64>)> {
        let g = self.inverse_grads(x, Some(weights), false)?;
        Ok((g.log_q, g.grad_theta.expect("requested")))
    }

    /// `log q(x)` and `d log q(x) / dx` of each column.
    pub fn grad_x_log_q(&self, x: &Batch) -> Result<(Vec<f64>, Batch)> {
        let g = self.inverse_grads(x, None, true)?;
        Ok((g.log_q, g.grad_x.expect("requested")))
    }

    /// One inverse pass and one backward pass giving `log q` and, as requested, the weighted
    /// parameter gradient and the input gradient.
    pub fn inverse_grads(&self, x: &Batch, weights: Option<&[f64]>, want_x: bool) -> Result<InverseGrads> {
        check_dim("flow input rows", x.nrows(), self.dim)?;
        let n = x.ncols();
        if let Some(w) = weights {
            check_dim("weights length", w.len(), n)?;
        }
        let record = weights.is_some() || want_x;
        let parts = shard::map(n, self.shard_size(n), |r| {
            let (log_q, base, tapes) = self.inverse_shard(x, r, record)?;
            if !record {
                return Ok((log_q, None, None));
            }
            let (gp, gx) = self.inverse_backward_shard(&base, &tapes, weights.map(|w| &w[r.0..r.0 + r.1]))?;
            Ok((log_q, gp, want_x.then_some(gx)))
        })?;
        let ranges = shard::ranges(n, self.shard_size(n));
        let mut log_q = Vec::with_capacity(n);
        let mut grad_theta = weights.map(|_| vec![0.0; self.n_params()]);
        let mut blocks = Vec::new();
        for (lq, gp, gx) in parts {
            log_q.extend(lq);
            if let (Some(acc), Some(gp)) = (grad_theta.as_mut(), gp) {
                acc.iter_mut().zip(gp).for_each(|(a, b)| *a += b);
            }
            blocks.extend(gx);
        }
        let grad_x = want_x.then(|| shard::concat_columns(self.dim, n, &ranges, blocks));
        Ok(InverseGrads { log_q, grad_theta, grad_x })
    }

    /// The recorded inverse pass of `x`: `log q(x)` now, and for [`Flow::grad_theta_recorded`]
    /// the tapes, so that weights computed from `log q` need no second inverse pass.
    pub fn inverse_record(&self, x: &Batch) -> Result<InverseRecord> {
        check_dim("flow input rows", x.nrows(), self.dim)?;
        let n = x.ncols();
        let parts = shard::map(n, self.shard_size(n), |r| self.inverse_shard(x, r, true))?;
        let mut log_q = Vec::with_capacity(n);
        let mut shards = Vec::with_capacity(parts.len());
        for (lq, base, tapes) in parts {
            log_q.extend(lq);
            shards.push((base, tapes));
        }
        Ok(InverseRecord { log_q, shards, ranges: shard::ranges(n, self.shard_size(n)) })
    }

    /// `sum_i w_i d log q(x_i) / d theta` at the points of a recorded inverse pass; the same
    /// value as [`Flow::grad_theta_log_q`] with these weights.
    pub fn grad_theta_recorded(&self, rec: &InverseRecord, weights: &[f64]) -> Result<Vec<f64>> {
        check_dim("weights length", weights.len(), rec.log_q.len())?;
        let parts: Vec<Option<Vec<f64>>> = {
            use rayon::prelude::*;
            rec.ranges
                .par_iter()
                .zip(rec.shards.par_iter())
                .map(|(&r, (base, tapes))| {
                    Ok(self.inverse_backward_shard(base, tapes, Some(&weights[r.0..r.0 + r.1]))?.0)
                })
                .collect::<Result<_>>()?
        };
        let mut total = vec![0.0; self.n_params()];
        for gp in parts.into_iter().flatten() {
            total.iter_mut().zip(gp).for_each(|(a, b)| *a += b);
        }
        Ok(total)
    }

    /// Inverse pass of the columns `r` of `x`: `log q`, the base points and, when `record`, the
    /// tapes in the order the layers ran (last layer first).
    fn inverse_shard(&self, x: &Batch, r: (usize, usize), record: bool) -> Result<(Vec<f64>, Batch, Vec<Tape>)> {
        let mut cur = shard::columns(x, r);
        let mut ld_sum = vec![0.0; r.1];
        let mut tapes = Vec::with_capacity(if record { self.layers.len() } else { 0 });
        for l in self.layers.iter().rev() {
            let p = l.inverse(&cur, record)?;
            ld_sum.iter_mut().zip(&p.log_det).for_each(|(a, b)| *a += b);
            if let Some(t) = p.tape {
                tapes.push(t);
            }
            cur = p.out;
        }
        let base = self.base_log_prob(&cur);
        let log_q = base.iter().zip(&ld_sum).map(|(a, b)| a + b).collect();
        Ok((log_q, cur, tapes))
    }

    /// Backward pass of one recorded inverse shard: the weighted parameter gradient (when
    /// `weights` are given) and `w_i d log q(x_i) / d x_i` (`w = 1` without weights).
    fn inverse_backward_shard(
        &self,
        base: &Batch,
        tapes: &[Tape],
        weights: Option<&[f64]>,
    ) -> Result<(Option<Vec<f64>>, Batch)> {
        // The base term first, then layers from the one applied last (layer 0).
        let w: Vec<f64> = match weights {
            Some(w) => w.to_vec(),
            None => vec![1.0; base.ncols()],
        };
        let mut g = self.base_grad(base);
        for (j, mut c) in g.column_iter_mut().enumerate() {
            c *= w[j];
        }
        let mut gp = weights.map(|_| vec![0.0; self.n_params()]);
        for (k, tape) in tapes.iter().rev().enumerate() {
            let slot = gp.as_mut().map(|v| &mut v[self.offsets[k]..self.offsets[k + 1]]);
            g = self.layers[k].vjp(Direction::Inverse, tape, Cotangent::new(&g, &w, slot))?;
        }
        Ok((gp, g))
    }

    /// `n` samples drawn through the flow with the forward pass recorded for [`Flow::backprop_path`].
    pub fn sample_path(&self, n: usize, rng: &mut Rng) -> Result<PathSample> {
        let z = self.sample_base(n, rng);
        self.path_from_base(z)
    }

    /// The recorded forward pass of given base points.
    pub fn path_from_base(&self, z: Batch) -> Result<PathSample> {
        check_dim("flow input rows", z.nrows(), self.dim)?;
        let n = z.ncols();
        let parts = shard::map(n, self.shard_size(n), |r| {
            let mut x = shard::columns(&z, r);
            let mut log_q = self.base_log_prob(&x);
            let mut tapes = Vec::with_capacity(self.layers.len());
            for l in &self.layers {
                let p = l.forward(&x, true)?;
                log_q.iter_mut().zip(&p.log_det).for_each(|(a, b)| *a -= b);
                tapes.push(p.tape.ok_or_else(|| Error::Other("layer recorded no tape".into()))?);
                x = p.out;
            }
            Ok((x, log_q, tapes))
        })?;
        let ranges = shard::ranges(n, self.shard_size(n));
        let mut xs = Vec::new();
        let mut log_q = Vec::with_capacity(n);
        let mut tapes = Vec::new();
        for (x, lq, t) in parts {
            xs.push(x);
            log_q.extend(lq);
            tapes.push(t);
        }
        let x = shard::concat_columns(self.dim, n, &ranges, xs);
        Ok(PathSample { z, x, log_q, tapes, ranges })
    }

    /// Parameter gradient, at fixed base points, of `sum_i g_x_i . x_i + g_log_q_i * log q(x_i)`
    /// along a recorded path (the reparameterisation trick).
    pub fn backprop_path(&self, path: &PathSample, g_x: &Batch, g_log_q: &[f64]) -> Result<Vec<f64>> {
        check_dim("path cotangent rows", g_x.nrows(), self.dim)?;
        check_dim("path cotangent columns", g_x.ncols(), path.x.ncols())?;
        check_dim("log q cotangent length", g_log_q.len(), path.x.ncols())?;
        let g_log_det: Vec<f64> = g_log_q.iter().map(|v| -v).collect();
        self.backprop_forward(&path.ranges, &path.tapes, g_x, &g_log_det)
    }

    /// Parameter gradient of `sum_i g_x_i . x_i + g_log_det_i * sum_k log|det J_k|(z_i)` along
    /// forward passes recorded shard by shard (`tapes[s][k]`: layer `k` of shard `ranges[s]`),
    /// summed in shard order so that the result does not depend on the thread count.
    pub(crate) fn backprop_forward(
        &self,
        ranges: &[(usize, usize)],
        tapes: &[Vec<Tape>],
        g_x: &Batch,
        g_log_det: &[f64],
    ) -> Result<Vec<f64>> {
        let parts: Vec<Vec<f64>> = {
            use rayon::prelude::*;
            ranges
                .par_iter()
                .zip(tapes.par_iter())
                .map(|(&r, tapes)| {
                    let mut g = shard::columns(g_x, r);
                    let g_ld = &g_log_det[r.0..r.0 + r.1];
                    let mut gp = vec![0.0; self.n_params()];
                    for k in (0..self.layers.len()).rev() {
                        let slot = &mut gp[self.offsets[k]..self.offsets[k + 1]];
                        g = self.layers[k].vjp(Direction::Forward, &tapes[k], Cotangent::new(&g, g_ld, Some(slot)))?;
                    }
                    Ok(gp)
                })
                .collect::<Result<_>>()?
        };
        let mut total = vec![0.0; self.n_params()];
        for gp in parts {
            total.iter_mut().zip(gp).for_each(|(a, b)| *a += b);
        }
        Ok(total)
    }

    /// `d log q0(z) / dz` per column.
    pub fn base_grad(&self, z: &Batch) -> Batch {
        let mut g = z.clone();
        for mut c in g.column_iter_mut() {
            for i in 0..self.dim {
                c[i] = -(c[i] - self.base_mean[i]) / (self.base_std[i] * self.base_std[i]);
            }
        }
        g
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
    use crate::affine::ElementwiseAffine;
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
