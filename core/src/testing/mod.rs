//! Checks shared by the tests of core and of every plugin (the `testing` feature): central
//! finite differences against hand-written vector–Jacobian products, round trips, and reference
//! numbers for targets.
//!
//! Relative error of a gradient `a` against a finite-difference estimate `b` is
//! `max_i |a_i - b_i| / max(|b_i|, 1e-3 * max_j |b_j|, 1e-12)`: per component, except that
//! components a thousand times smaller than the largest are measured against that floor
//! (their relative error is dominated by rounding in the difference quotient, not by the code).

pub mod properties;
mod targets;

pub use targets::{mean_and_mcse, simpson, target_grad_error};

use rand::seq::index::sample;

use crate::Batch;
use crate::error::{Error, Result};
use crate::model::bijection::{Bijection, Cotangent, Direction, score_by_opposite_pass};
use crate::rng::{Rng, fill_normal};

/// A `dim x n` batch of standard normal draws.
pub fn random_batch(dim: usize, n: usize, rng: &mut Rng) -> Batch {
    let mut b = Batch::zeros(dim, n);
    fill_normal(rng, b.as_mut_slice());
    b
}

/// Sets every parameter of `layer` to an independent `N(0, scale^2)` draw.
pub fn randomise_params(layer: &mut dyn Bijection, scale: f64, rng: &mut Rng) -> Result<()> {
    let mut p = vec![0.0; layer.n_params()];
    fill_normal(rng, &mut p);
    p.iter_mut().for_each(|v| *v *= scale);
    layer.set_params(&p)
}

/// Relative error as defined in the module docs.
pub fn rel_error(analytic: &[f64], numeric: &[f64]) -> f64 {
    assert_eq!(analytic.len(), numeric.len());
    let top = numeric.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let floor = (1e-3 * top).max(1e-12);
    analytic.iter().zip(numeric).map(|(a, b)| (a - b).abs() / b.abs().max(floor)).fold(0.0, f64::max)
}

/// Central difference of `f` at `x` along coordinate `i` (or along `dir` when given).
pub fn central_difference(f: &mut dyn FnMut(&[f64]) -> f64, x: &[f64], dir: &[f64], h: f64) -> f64 {
    let plus: Vec<f64> = x.iter().zip(dir).map(|(a, d)| a + h * d).collect();
    let minus: Vec<f64> = x.iter().zip(dir).map(|(a, d)| a - h * d).collect();
    (f(&plus) - f(&minus)) / (2.0 * h)
}

/// Finite-difference gradient of `f` at `x` on the coordinates `idx`.
pub fn fd_gradient(f: &mut dyn FnMut(&[f64]) -> f64, x: &[f64], idx: &[usize], h: f64) -> Vec<f64> {
    idx.iter()
        .map(|&i| {
            let mut e = vec![0.0; x.len()];
            e[i] = 1.0;
            central_difference(f, x, &e, h)
        })
        .collect()
}

/// Up to `max` coordinate indices out of `n`, chosen at random (all when `n <= max`).
pub fn some_indices(n: usize, max: usize, rng: &mut Rng) -> Vec<usize> {
    if n <= max {
        (0..n).collect()
    } else {
        let mut v = sample(rng, n, max).into_vec();
        v.sort_unstable();
        v
    }
}

/// Worst errors found by [`check_bijection`].
#[derive(Debug, Clone, Copy, Default)]
pub struct BijectionReport {
    /// Largest `|F^-1(F(z)) - z|`.
    pub round_trip: f64,
    /// Largest `|log det + log det of the inverse|`.
    pub log_det_sum: f64,
    /// Relative error of the forward VJP with respect to the input.
    pub forward_input: f64,
    /// Relative error of the forward VJP with respect to the parameters.
    pub forward_params: f64,
    /// Relative error of the inverse VJP with respect to the input.
    pub inverse_input: f64,
    /// Relative error of the inverse VJP with respect to the parameters.
    pub inverse_params: f64,
    /// Relative difference, worst of both directions, of the layer's `pass_with_score` from the
    /// opposite-pass reference [`score_by_opposite_pass`].
    pub score: f64,
}

impl BijectionReport {
    /// The largest relative error of the four gradient checks.
    pub fn worst_gradient(&self) -> f64 {
        [self.forward_input, self.forward_params, self.inverse_input, self.inverse_params]
            .into_iter()
            .fold(0.0, f64::max)
    }
}

/// Step of the central differences used by the checks.
pub const FD_STEP: f64 = 1e-5;

/// Checks a layer at the batch `z` (base side): round trip and log-det sum within `round_trip_tol`,
/// and every VJP (both directions, inputs and parameters: up to 64 parameter coordinates plus one
/// random direction through all of them) against central differences within `grad_tol`.
pub fn check_bijection(
    layer: &mut dyn Bijection,
    z: &Batch,
    grad_tol: f64,
    round_trip_tol: f64,
) -> Result<BijectionReport> {
    let mut rng = crate::rng::stream(0xC0FFEE, 0);
    let mut report = BijectionReport::default();

    let fwd = layer.forward(z, false)?;
    let inv = layer.inverse(&fwd.out, false)?;
    report.round_trip = (&inv.out - z).abs().max();
    report.log_det_sum = fwd.log_det.iter().zip(&inv.log_det).map(|(a, b)| (a + b).abs()).fold(0.0, f64::max);

    let x = fwd.out.clone();
    for inverse in [false, true] {
        let input = if inverse { &x } else { z };
        let (gi, gp) = check_direction(layer, input, inverse, &mut rng)?;
        if inverse {
            report.inverse_input = gi;
            report.inverse_params = gp;
        } else {
            report.forward_input = gi;
            report.forward_params = gp;
        }
    }
    report.score = [false, true]
        .into_iter()
        .map(|inverse| score_difference(layer, if inverse { &x } else { z }, inverse, &mut rng))
        .collect::<Result<Vec<_>>>()?
        .into_iter()
        .fold(0.0, f64::max);
    if report.round_trip > round_trip_tol
        || report.log_det_sum > round_trip_tol
        || report.worst_gradient() > grad_tol
        || report.score > SCORE_TOL
    {
        return Err(Error::Other(format!("bijection check failed: {report:?}")));
    }
    Ok(report)
}

/// Largest relative difference allowed between a layer's `pass_with_score` and the reference.
pub const SCORE_TOL: f64 = 1e-10;

/// How far a layer's `pass_with_score` is from [`score_by_opposite_pass`] on a random score;
/// fails outright when its pass differs from the plain pass or its tape gives another VJP.
fn score_difference(layer: &dyn Bijection, input: &Batch, inverse: bool, rng: &mut Rng) -> Result<f64> {
    let (d, n) = input.shape();
    let direction = if inverse { Direction::Inverse } else { Direction::Forward };
    let score = random_batch(d, n, rng);
    let (p, s) = layer.pass_with_score(direction, input, &score, true)?;
    let (_, reference) = score_by_opposite_pass(layer, direction, input, &score, false)?;
    let plain = layer.pass(direction, input, true)?;
    let close = |a: &Batch, b: &Batch| (a - b).abs().max() <= 1e-14 * (1.0 + b.abs().max());
    let ld = |v: &[f64]| Batch::from_column_slice(1, v.len(), v);
    if !close(&p.out, &plain.out) || !close(&ld(&p.log_det), &ld(&plain.log_det)) {
        return Err(Error::Other("pass_with_score changes the pass".into()));
    }
    let g_out = random_batch(d, n, rng);
    let g_ld = vec![0.5; n];
    let vjp = |t: Option<crate::model::bijection::Tape>| {
        let t = t.ok_or_else(|| Error::Other("pass recorded no tape".into()))?;
        layer.vjp(direction, &t, Cotangent::new(&g_out, &g_ld, None))
    };
    let (a, b) = (vjp(p.tape)?, vjp(plain.tape)?);
    if !close(&a, &b) {
        return Err(Error::Other("the tape of pass_with_score gives another VJP".into()));
    }
    Ok(rel_error(s.as_slice(), reference.as_slice()))
}

fn pass(layer: &dyn Bijection, input: &Batch, inverse: bool) -> Result<crate::model::bijection::Pass> {
    if inverse { layer.inverse(input, true) } else { layer.forward(input, true) }
}

/// Scalar `L = sum(g_out .* out) + g_ld . log_det` of one pass.
fn contract(layer: &dyn Bijection, input: &Batch, inverse: bool, g_out: &Batch, g_ld: &[f64]) -> f64 {
    let p = pass(layer, input, inverse).expect("pass during finite differences");
    g_out.dot(&p.out) + p.log_det.iter().zip(g_ld).map(|(a, b)| a * b).sum::<f64>()
}

fn check_direction(layer: &mut dyn Bijection, input: &Batch, inverse: bool, rng: &mut Rng) -> Result<(f64, f64)> {
    let (d, n) = input.shape();
    let g_out = random_batch(d, n, rng);
    let g_ld = random_batch(1, n, rng).as_slice().to_vec();
    let theta = layer.params();
    let mut g_params = vec![0.0; theta.len()];
    let p = pass(layer, input, inverse)?;
    let tape = p.tape.ok_or_else(|| Error::Other("pass recorded no tape".into()))?;
    let direction = if inverse { Direction::Inverse } else { Direction::Forward };
    let g_in = layer.vjp(direction, &tape, Cotangent::new(&g_out, &g_ld, Some(&mut g_params)))?;
    // The input VJP without parameter accumulation must agree with the one with it.
    let g_in_only = layer.vjp(direction, &tape, Cotangent::new(&g_out, &g_ld, None))?;
    if (&g_in_only - &g_in).abs().max() > 1e-12 * (1.0 + g_in.abs().max()) {
        return Err(Error::Other("input VJP changes when parameter gradients are requested".into()));
    }

    let idx: Vec<usize> = (0..d * n).collect();
    let fd_in = {
        let layer_ref: &dyn Bijection = layer;
        let mut f = |v: &[f64]| contract(layer_ref, &Batch::from_column_slice(d, n, v), inverse, &g_out, &g_ld);
        fd_gradient(&mut f, input.as_slice(), &idx, FD_STEP)
    };
    let err_in = rel_error(g_in.as_slice(), &fd_in);

    if theta.is_empty() {
        return Ok((err_in, 0.0));
    }
    let pidx = some_indices(theta.len(), 64, rng);
    let mut dir = vec![0.0; theta.len()];
    fill_normal(rng, &mut dir);
    // A unit direction: the difference step is then FD_STEP whatever the parameter count (an
    // unnormalised draw would step sqrt(P) times further, and its truncation error with it).
    let norm = dir.iter().map(|v| v * v).sum::<f64>().sqrt();
    dir.iter_mut().for_each(|v| *v /= norm);
    let mut analytic: Vec<f64> = pidx.iter().map(|&i| g_params[i]).collect();
    analytic.push(g_params.iter().zip(&dir).map(|(a, b)| a * b).sum());
    let numeric = {
        let mut f = |t: &[f64]| {
            layer.set_params(t).expect("set params");
            contract(layer, input, inverse, &g_out, &g_ld)
        };
        let mut v = fd_gradient(&mut f, &theta, &pidx, FD_STEP);
        v.push(central_difference(&mut f, &theta, &dir, FD_STEP));
        v
    };
    layer.set_params(&theta)?;
    Ok((err_in, rel_error(&analytic, &numeric)))
}

/// Worst errors found by [`check_flow`].
#[derive(Debug, Clone, Copy, Default)]
pub struct FlowReport {
    /// Relative error of `grad_theta_log_q`.
    pub grad_theta: f64,
    /// Relative error of `grad_x_log_q`.
    pub grad_x: f64,
    /// Relative error of the pathwise gradient.
    pub path: f64,
    /// Largest difference of the sampled and the recomputed `log q`.
    pub sample_log_q: f64,
}

/// Checks a flow's gradients at data points `x` with weights `w` against central differences:
/// `grad_theta_log_q` (weighted sum), `grad_x_log_q`, and the pathwise gradient of
/// `sum_i g_i . x_i + h_i log q(x_i)` at base points `z = F^-1(x)`; also that `log q` returned by
/// the forward pass equals the inverse pass's.
pub fn check_flow(flow: &mut crate::Flow, x: &Batch, w: &[f64], tol: f64) -> Result<FlowReport> {
    let mut rng = crate::rng::stream(0xF10, 0);
    let (d, n) = x.shape();
    let theta = flow.params();
    let pidx = some_indices(theta.len(), 64, &mut rng);
    let mut report = FlowReport::default();

    let (_, g_theta) = flow.grad_theta_log_q(x, w)?;
    let numeric = {
        let mut f = |t: &[f64]| {
            flow.set_params(t).expect("set params");
            flow.log_q(x).expect("log q").iter().zip(w).map(|(a, b)| a * b).sum()
        };
        fd_gradient(&mut f, &theta, &pidx, FD_STEP)
    };
    flow.set_params(&theta)?;
    report.grad_theta = rel_error(&pidx.iter().map(|&i| g_theta[i]).collect::<Vec<_>>(), &numeric);

    let (_, g_x) = flow.grad_x_log_q(x)?;
    let numeric = {
        let flow_ref: &crate::Flow = flow;
        let mut f = |v: &[f64]| flow_ref.log_q(&Batch::from_column_slice(d, n, v)).expect("log q").iter().sum();
        fd_gradient(&mut f, x.as_slice(), &(0..d * n).collect::<Vec<_>>(), FD_STEP)
    };
    report.grad_x = rel_error(g_x.as_slice(), &numeric);

    // Base points of x, then the path derivative at those fixed base points.
    let z = invert_to_base(flow, x)?;
    let path = flow.path_from_base(z.clone())?;
    let lq_inv = flow.log_q(&path.x)?;
    report.sample_log_q = path.log_q.iter().zip(&lq_inv).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
    let g = random_batch(d, n, &mut rng);
    let h = random_batch(1, n, &mut rng).as_slice().to_vec();
    let analytic = flow.backprop_path(&path, &g, &h)?;
    let numeric = {
        let mut f = |t: &[f64]| {
            flow.set_params(t).expect("set params");
            let (xx, lq) = flow.push_forward(&z).expect("forward");
            g.dot(&xx) + lq.iter().zip(&h).map(|(a, b)| a * b).sum::<f64>()
        };
        fd_gradient(&mut f, &theta, &pidx, FD_STEP)
    };
    flow.set_params(&theta)?;
    report.path = rel_error(&pidx.iter().map(|&i| analytic[i]).collect::<Vec<_>>(), &numeric);

    let worst = report.grad_theta.max(report.grad_x).max(report.path);
    if worst > tol || report.sample_log_q > 1e-9 {
        return Err(Error::Other(format!("flow check failed: {report:?}")));
    }
    Ok(report)
}

/// `F^-1(x)` through every layer.
pub fn invert_to_base(flow: &crate::Flow, x: &Batch) -> Result<Batch> {
    let mut cur = x.clone();
    for l in flow.layers().iter().rev() {
        cur = l.inverse(&cur, false)?.out;
    }
    Ok(cur)
}

/// `grad_z [log p(F(z)) + log|det dF/dz|]`, the score of a density `p` pulled back to the base
/// side, the standard way: the recorded forward pass of `z`, then one VJP per layer with
/// cotangents `(grad_log_p at F(z), 1)`. The reference the inverse scored pass is tested against.
pub fn pulled_back_score(flow: &crate::Flow, z: &Batch, grad_log_p: &Batch) -> Result<Batch> {
    let mut tapes = Vec::with_capacity(flow.layers().len());
    let mut cur = z.clone();
    for l in flow.layers() {
        let p = l.forward(&cur, true)?;
        tapes.push(p.tape.ok_or_else(|| Error::Other("pass recorded no tape".into()))?);
        cur = p.out;
    }
    let ones = vec![1.0; z.ncols()];
    let mut g = grad_log_p.clone();
    for (l, t) in flow.layers().iter().zip(&tapes).rev() {
        g = l.vjp(Direction::Forward, t, Cotangent::new(&g, &ones, None))?;
    }
    Ok(g)
}

/// The forward-KL path gradient computed the standard way, for the tests of the fast one:
/// `mean_i (dz_i / dtheta)^T (s_i - grad log q0(z_i))` with `z = F^-1(x)` at fixed data `x`
/// and `s` the pulled-back score of [`pulled_back_score`] (a second, forward pass from `z`).
pub fn forward_kl_path_reference(flow: &crate::Flow, x: &Batch, grad_log_p: &Batch) -> Result<Vec<f64>> {
    let n = x.ncols();
    let mut tapes = Vec::with_capacity(flow.layers().len());
    let mut cur = x.clone();
    for l in flow.layers().iter().rev() {
        let p = l.inverse(&cur, true)?;
        tapes.push(p.tape.ok_or_else(|| Error::Other("pass recorded no tape".into()))?);
        cur = p.out;
    }
    tapes.reverse();
    let z = cur;
    // Apart from the flow's own pass, the pulled-back score needs the target's score at F(z) = x.
    let mut g = (pulled_back_score(flow, &z, grad_log_p)? - flow.base_grad(&z)) / n as f64;
    let mut offsets = vec![0];
    flow.layers().iter().for_each(|l| offsets.push(offsets.last().unwrap() + l.n_params()));
    let mut grad = vec![0.0; flow.n_params()];
    let zeros = vec![0.0; n];
    for (k, (l, t)) in flow.layers().iter().zip(&tapes).enumerate() {
        let slot = &mut grad[offsets[k]..offsets[k + 1]];
        g = l.vjp(Direction::Inverse, t, Cotangent::new(&g, &zeros, Some(slot)))?;
    }
    Ok(grad)
}
