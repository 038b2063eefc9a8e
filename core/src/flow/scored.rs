//! Passes through the flow that carry a score along (the fast path gradient, Vaitl et al. 2024;
//! docs/metrics.md §2): each layer maps the incoming score through its own pass
//! ([`Bijection::pass_with_score`](crate::Bijection::pass_with_score)), so a path gradient is one
//! pass plus one backward pass, with no second pass through the flow in the other direction.
//!
//! - Forward from base points `z` with the base's score: the samples `x`, `log q(x)` and
//!   `grad_x log q(x)` (reverse KL).
//! - Inverse from data points `x` with a target's score `grad_x log p(x)`: the base points
//!   `z = F^-1(x)` and `grad_z log p_F(z)` of the target pulled back to the base side,
//!   `p_F(z) = p(F(z)) |det dF/dz|` (forward KL: `KL(p || q) = KL(p_F || q0)`).

use crate::Batch;
use crate::error::{Error, Result, check_dim};
use crate::model::bijection::{Cotangent, Direction, Tape};
use crate::shard;

use super::Flow;

/// A recorded pass through the whole flow with the score carried to its outputs.
pub struct ScoredPass {
    /// The pass's outputs: samples `x` (forward) or base points `z` (inverse), `dim x n`.
    pub out: Batch,
    /// `log q(x)` of each column.
    pub log_q: Vec<f64>,
    /// The carried score at `out`.
    pub score: Batch,
    direction: Direction,
    /// Per shard, one tape per layer in layer order (`tapes[s][k]` of layer `k`).
    tapes: Vec<Vec<Tape>>,
    ranges: Vec<(usize, usize)>,
}

impl Flow {
    /// The recorded forward pass of base points `z`, carrying `grad log q` from the base to the
    /// samples.
    pub fn forward_scored(&self, z: &Batch) -> Result<ScoredPass> {
        check_dim("flow input rows", z.nrows(), self.dim)?;
        let score = self.base_grad(z);
        self.scored(Direction::Forward, z, &score)
    }

    /// The recorded inverse pass of data points `x` carrying `score` (`grad_x log p` of a
    /// density `p` of the data) to the base side, where it is the score of `p` pulled back.
    pub fn inverse_scored(&self, x: &Batch, score: &Batch) -> Result<ScoredPass> {
        check_dim("flow input rows", x.nrows(), self.dim)?;
        check_dim("score rows", score.nrows(), self.dim)?;
        check_dim("score columns", score.ncols(), x.ncols())?;
        self.scored(Direction::Inverse, x, score)
    }

    fn scored(&self, direction: Direction, input: &Batch, score: &Batch) -> Result<ScoredPass> {
        let n = input.ncols();
        let ranges = shard::ranges(n, self.shard_size(n));
        let parts = shard::map(n, self.shard_size(n), |r| {
            let (mut cur, mut s) = (shard::columns(input, r), shard::columns(score, r));
            let mut ld_sum = vec![0.0; r.1];
            let base_in = (!direction.is_inverse()).then(|| self.base_log_prob(&cur));
            let mut tapes = Vec::with_capacity(self.layers.len());
            let order: Box<dyn Iterator<Item = _>> = match direction {
                Direction::Forward => Box::new(self.layers.iter()),
                Direction::Inverse => Box::new(self.layers.iter().rev()),
            };
            for l in order {
                let (p, next) = l.pass_with_score(direction, &cur, &s, true)?;
                ld_sum.iter_mut().zip(&p.log_det).for_each(|(a, b)| *a += b);
                tapes.push(p.tape.ok_or_else(|| Error::Other("layer recorded no tape".into()))?);
                (cur, s) = (p.out, next);
            }
            if direction.is_inverse() {
                tapes.reverse();
            }
            // log q(x) = log q0(z) - sum log|det dF| = log q0(z) + sum log|det dF^-1|.
            let base = base_in.unwrap_or_else(|| self.base_log_prob(&cur));
            let log_q: Vec<f64> = base.iter().zip(&ld_sum).map(|(b, l)| b - direction.sign() * l).collect();
            Ok((cur, log_q, s, tapes))
        })?;
        let (mut outs, mut scores, mut log_q, mut tapes) = (Vec::new(), Vec::new(), Vec::with_capacity(n), Vec::new());
        for (o, lq, s, t) in parts {
            outs.push(o);
            scores.push(s);
            log_q.extend(lq);
            tapes.push(t);
        }
        let out = shard::concat_columns(self.dim, n, &ranges, outs);
        let score = shard::concat_columns(self.dim, n, &ranges, scores);
        Ok(ScoredPass { out, log_q, score, direction, tapes, ranges })
    }

    /// Parameter gradient of `sum_i g_i . out_i` at the pass's fixed inputs along a recorded
    /// scored pass, summed in shard order.
    pub fn backprop_scored(&self, pass: &ScoredPass, g_out: &Batch) -> Result<Vec<f64>> {
        check_dim("cotangent rows", g_out.nrows(), self.dim)?;
        check_dim("cotangent columns", g_out.ncols(), pass.out.ncols())?;
        let zeros = vec![0.0; pass.out.ncols()];
        if pass.direction == Direction::Forward {
            return self.backprop_forward(&pass.ranges, &pass.tapes, g_out, &zeros);
        }
        let parts: Vec<Vec<f64>> = {
            use rayon::prelude::*;
            pass.ranges
                .par_iter()
                .zip(pass.tapes.par_iter())
                .map(|(&r, tapes)| {
                    let mut g = shard::columns(g_out, r);
                    let g_ld = &zeros[..r.1];
                    let mut gp = vec![0.0; self.n_params()];
                    // Layer 0 ran last in the inverse pass: its backward step comes first.
                    for (k, tape) in tapes.iter().enumerate() {
                        let slot = &mut gp[self.offsets[k]..self.offsets[k + 1]];
                        g = self.layers[k].vjp(Direction::Inverse, tape, Cotangent::new(&g, g_ld, Some(slot)))?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::affine::ElementwiseAffine;
    use crate::model::bijection::Bijection;
    use crate::testing;

    fn flow(r: &mut crate::Rng) -> Flow {
        // Affine layers around a sinh layer, whose log-determinant depends on its input.
        let mut layers: Vec<Box<dyn Bijection>> = (0..2)
            .map(|_| {
                let mut l = ElementwiseAffine::new(2);
                testing::randomise_params(&mut l, 0.5, r).unwrap();
                Box::new(l) as Box<dyn Bijection>
            })
            .collect();
        layers.insert(1, Box::new(crate::train::test_support::Sinh(2)));
        Flow::with_base(vec![0.2, -0.1], vec![1.3, 0.7], layers).unwrap().with_shard_size(64)
    }

    #[test]
    fn forward_score_equals_the_inverse_pass_score() {
        let mut r = crate::rng::stream(21, 0);
        let flow = flow(&mut r);
        let z = flow.sample_base(300, &mut r);
        let fast = flow.forward_scored(&z).unwrap();
        let (lq, gx) = flow.grad_x_log_q(&fast.out).unwrap();
        assert!(testing::rel_error(fast.score.as_slice(), gx.as_slice()) < 1e-10);
        assert!(fast.log_q.iter().zip(&lq).all(|(a, b)| (a - b).abs() < 1e-10));
        // Backprop with g_x equals the library's reparameterisation backprop.
        let path = flow.path_from_base(z).unwrap();
        let g_x = testing::random_batch(2, 300, &mut r);
        let ours = flow.backprop_scored(&fast, &g_x).unwrap();
        let lib = flow.backprop_path(&path, &g_x, &[0.0; 300]).unwrap();
        assert!(testing::rel_error(&ours, &lib) < 1e-12);
    }

    #[test]
    fn inverse_pass_pulls_the_score_back_and_differentiates_the_base_points() {
        let mut r = crate::rng::stream(22, 0);
        let mut flow = flow(&mut r);
        let x = testing::random_batch(2, 200, &mut r);
        // p = N(0.3, 1.5^2) per coordinate: grad log p = -(x - 0.3) / 2.25.
        let score = x.map(|v| -(v - 0.3) / 2.25);
        let inv = flow.inverse_scored(&x, &score).unwrap();
        assert!(inv.log_q.iter().zip(flow.log_q(&x).unwrap()).all(|(a, b)| (a - b).abs() < 1e-12));
        // grad_z [log p(F(z)) + log|det dF/dz|] from the forward pass at z, one VJP.
        let path = flow.path_from_base(inv.out.clone()).unwrap();
        let g_x = path.x.map(|v| -(v - 0.3) / 2.25);
        let reference = testing::pulled_back_score(&flow, &inv.out, &g_x).unwrap();
        assert!(testing::rel_error(inv.score.as_slice(), reference.as_slice()) < 1e-10);
        // The parameter gradient of sum g . z at fixed x, against central differences.
        let g = testing::random_batch(2, 200, &mut r);
        let analytic = flow.backprop_scored(&inv, &g).unwrap();
        let theta = flow.params();
        let idx: Vec<usize> = (0..theta.len()).collect();
        let mut f = |t: &[f64]| {
            flow.set_params(t).unwrap();
            g.dot(&testing::invert_to_base(&flow, &x).unwrap())
        };
        let numeric = testing::fd_gradient(&mut f, &theta, &idx, testing::FD_STEP);
        assert!(testing::rel_error(&analytic, &numeric) < 1e-6, "{analytic:?} {numeric:?}");
    }
}
