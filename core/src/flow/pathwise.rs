//! The sampling side of a flow: samples with their forward pass recorded, and the pathwise
//! (reparameterisation) gradient back through it.

use crate::Batch;
use crate::error::{Error, Result, check_dim};
use crate::model::bijection::{Cotangent, Direction, Tape};
use crate::rng::Rng;
use crate::shard;

use super::Flow;

/// A batch drawn through the flow with everything needed to differentiate the sampling path.
pub struct PathSample {
    /// Base points `z ~ q0`, `dim x n`.
    pub z: Batch,
    /// Samples `x = F(z)`, `dim x n`.
    pub x: Batch,
    /// `log q(x)` of each sample.
    pub log_q: Vec<f64>,
    tapes: Vec<Vec<Tape>>,
    ranges: Vec<(usize, usize)>,
}

impl Flow {
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
}
