//! The density side of a flow: `log q(x)` by the inverse pass, and its gradients with respect
//! to the parameters (at fixed `x`) and to `x`, from one inverse and one backward pass.

use crate::Batch;
use crate::error::{Result, check_dim};
use crate::model::bijection::{Cotangent, Direction, Tape};
use crate::shard;

use super::Flow;

/// A recorded inverse pass (see [`Flow::inverse_record`]): base points and tapes per shard.
pub struct InverseRecord {
    /// `log q(x)` of each column of the recorded input.
    pub log_q: Vec<f64>,
    shards: Vec<(Batch, Vec<Tape>)>,
    ranges: Vec<(usize, usize)>,
}

/// Values of the inverse pass and the requested derivatives.
pub struct InverseGrads {
    /// `log q(x)` of each column.
    pub log_q: Vec<f64>,
    /// `sum_i w_i d log q(x_i) / d theta`, when asked for.
    pub grad_theta: Option<Vec<f64>>,
    /// `d log q(x_i) / d x_i` per column, when asked for (unweighted).
    pub grad_x: Option<Batch>,
}

impl Flow {
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
}
