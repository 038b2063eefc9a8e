//! The forward pass of the fast path gradient: `grad_x log q` is carried layer by layer while
//! sampling, so the path gradient needs no separate inverse pass through the whole flow.
//!
//! For `x_{k+1} = f_k(x_k)`: `grad_{x_{k+1}} log q_{k+1} = J_k^{-T} (grad_{x_k} log q_k -
//! grad_{x_k} log|det J_k|)`. With the [`Bijection`](crate::Bijection) trait the log-det gradient
//! is the forward VJP with `g_out = 0, g_log_det = 1`, and `J_k^{-T} u` is the inverse VJP at
//! `x_{k+1}`, which needs that layer's inverse tape. So each layer costs one forward, one inverse
//! and two VJPs without parameter gradients: the same work as the path gradient's separate
//! inverse pass, done while sampling (no saving unless a layer offers a cheaper `J^{-T}` VJP).

use crate::Batch;
use crate::error::{Error, Result, check_dim};
use crate::flow::Flow;
use crate::model::bijection::{Cotangent, Direction, Tape};
use crate::shard;

/// A sample drawn through the flow with `grad_x log q(x)` and the forward tapes for backprop.
pub struct ScoredPath {
    pub x: Batch,
    pub log_q: Vec<f64>,
    pub grad_x_log_q: Batch,
    tapes: Vec<Vec<Tape>>,
    ranges: Vec<(usize, usize)>,
}

/// Pushes base points `z` through the flow, carrying `grad_x log q` forward.
pub fn forward_with_score(flow: &Flow, z: &Batch) -> Result<ScoredPath> {
    check_dim("flow input rows", z.nrows(), flow.dim())?;
    let n = z.ncols();
    let ranges = shard::ranges(n, flow.shard_size(n));
    let parts = shard::map(n, flow.shard_size(n), |r| {
        let mut x = shard::columns(z, r);
        let mut log_q = flow.base_log_prob(&x);
        let mut g = flow.base_grad(&x);
        let zeros = Batch::zeros(flow.dim(), r.1);
        let (ones, no_ld) = (vec![1.0; r.1], vec![0.0; r.1]);
        let mut tapes = Vec::with_capacity(flow.layers().len());
        for l in flow.layers() {
            let p = l.forward(&x, true)?;
            let tape = p.tape.ok_or_else(|| Error::Other("layer recorded no forward tape".into()))?;
            g -= l.vjp(Direction::Forward, &tape, Cotangent::new(&zeros, &ones, None))?;
            let inv = l.inverse(&p.out, true)?;
            let inv_tape = inv.tape.ok_or_else(|| Error::Other("layer recorded no inverse tape".into()))?;
            g = l.vjp(Direction::Inverse, &inv_tape, Cotangent::new(&g, &no_ld, None))?;
            log_q.iter_mut().zip(&p.log_det).for_each(|(a, b)| *a -= b);
            tapes.push(tape);
            x = p.out;
        }
        Ok((x, log_q, g, tapes))
    })?;
    let (mut xs, mut gs, mut log_q, mut tapes) = (Vec::new(), Vec::new(), Vec::with_capacity(n), Vec::new());
    for (x, lq, g, t) in parts {
        xs.push(x);
        gs.push(g);
        log_q.extend(lq);
        tapes.push(t);
    }
    let x = shard::concat_columns(flow.dim(), n, &ranges, xs);
    let grad_x_log_q = shard::concat_columns(flow.dim(), n, &ranges, gs);
    Ok(ScoredPath { x, log_q, grad_x_log_q, tapes, ranges })
}

/// Parameter gradient of `sum_i g_x_i . x_i` at fixed base points along the recorded path.
pub fn backprop(flow: &Flow, path: &ScoredPath, g_x: &Batch) -> Result<Vec<f64>> {
    check_dim("path cotangent columns", g_x.ncols(), path.x.ncols())?;
    flow.backprop_forward(&path.ranges, &path.tapes, g_x, &vec![0.0; path.x.ncols()])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::affine::ElementwiseAffine;
    use crate::model::bijection::Bijection;
    use crate::testing;

    #[test]
    fn carried_score_equals_the_inverse_pass_score() {
        let mut r = crate::rng::stream(21, 0);
        // Affine layers around a sinh layer, whose log-determinant depends on its input.
        let mut layers: Vec<Box<dyn Bijection>> = (0..2)
            .map(|_| {
                let mut l = ElementwiseAffine::new(2);
                testing::randomise_params(&mut l, 0.5, &mut r).unwrap();
                Box::new(l) as Box<dyn Bijection>
            })
            .collect();
        layers.insert(1, Box::new(crate::train::test_support::Sinh(2)));
        let flow = Flow::with_base(vec![0.2, -0.1], vec![1.3, 0.7], layers).unwrap();
        let z = flow.sample_base(300, &mut r);
        let fast = forward_with_score(&flow, &z).unwrap();
        let (lq, gx) = flow.grad_x_log_q(&fast.x).unwrap();
        assert!((&fast.grad_x_log_q - &gx).amax() < 1e-10 * (1.0 + gx.amax()));
        assert!(fast.log_q.iter().zip(&lq).all(|(a, b)| (a - b).abs() < 1e-10));
        // Backprop with g_x equals the library's reparameterisation backprop.
        let path = flow.path_from_base(z).unwrap();
        let g_x = testing::random_batch(2, 300, &mut r);
        let ours = backprop(&flow, &fast, &g_x).unwrap();
        let lib = flow.backprop_path(&path, &g_x, &[0.0; 300]).unwrap();
        assert!(testing::rel_error(&ours, &lib) < 1e-12);
    }
}
