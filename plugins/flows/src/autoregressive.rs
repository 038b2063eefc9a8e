//! Affine autoregressive layers on a MADE conditioner: MAF and IAF.
//!
//! With forward = base `z` to data `x` (docs/conventions.md §0) and `(mu, s)` the MADE outputs, the
//! log-scale bounded as `s = scale_bound * tanh(raw_s)`:
//!
//! - MAF conditions on `x`: `z_j = (x_j - mu_j(x_<j)) exp(-s_j(x_<j))`. The inverse (density)
//!   is one network pass; the forward (sampling) solves for `x` one coordinate at a time in the
//!   order, `D` network passes.
//! - IAF conditions on `z`: `x_j = mu_j(z_<j) + exp(s_j(z_<j)) z_j`. The forward (sampling) is
//!   one pass; the inverse (density) is sequential.
//!
//! `log|det dF/dz| = sum_j s_j` for both. Both are written as one "one-pass map" `P: y -> w`
//! (the conditioner reads `y`) and its sequential inverse. The VJP of the sequential direction
//! uses the implicit function theorem at the solution: with `J = dP/dy` (triangular in the
//! order), the input cotangent is `v = J^-T u`, found by back substitution with one network
//! VJP per coordinate, so only the final network pass is taped.

use bootflow_core::check_dim;
use bootflow_core::{Batch, Bijection, Cotangent, Direction, Error, Pass, Result, Rng, Tape, score_by_opposite_pass};
use bootflow_nn::Activation;
use bootflow_nn::mlp::MlpTape;

use crate::made::Made;

/// Which side the conditioner reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Masked autoregressive flow: fast density, sequential sampling.
    Maf,
    /// Inverse autoregressive flow: fast sampling, sequential density.
    Iaf,
}

/// One autoregressive affine layer.
#[derive(Clone, Debug)]
pub struct Autoregressive {
    kind: Kind,
    order: Vec<usize>,
    scale_bound: f64,
    made: Made,
}

/// A pass's record: the conditioner's input `y`, the one-pass map's output `w`, the network
/// output at `y`, and its tape.
struct ArTape {
    sequential: bool,
    net: MlpTape,
    raw: Batch,
    y: Batch,
    w: Batch,
}

/// Element-wise partials of the one-pass map at one entry.
struct Local {
    /// `dw/dy` (the diagonal of `J`).
    diag: f64,
    d_mu: f64,
    d_s: f64,
    /// `ds/draw_s`.
    ds_draw: f64,
}

impl Autoregressive {
    /// A layer with the given order (`order[k]` is the coordinate at position `k`); last layer
    /// zero, so a fresh layer is the identity.
    pub fn new(
        kind: Kind,
        order: Vec<usize>,
        hidden: &[usize],
        activation: Activation,
        scale_bound: f64,
        rng: &mut Rng,
    ) -> Result<Self> {
        let d = order.len();
        let mut seen = vec![false; d];
        if d == 0 || order.iter().any(|&i| i >= d || std::mem::replace(&mut seen[i], true)) {
            return Err(Error::Config(format!("order {order:?} is not a permutation of 0..{d}")));
        }
        if hidden.contains(&0) {
            return Err(Error::Config("hidden widths must be positive".into()));
        }
        if !(scale_bound > 0.0 && scale_bound.is_finite()) {
            return Err(Error::Config(format!("scale_bound must be positive and finite, got {scale_bound}")));
        }
        let made = Made::new(&order, hidden, activation, rng);
        Ok(Self { kind, order, scale_bound, made })
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    pub fn order(&self) -> &[usize] {
        &self.order
    }

    /// `+1` for IAF (`log|det dP/dy| = sum s`), `-1` for MAF (`-sum s`).
    fn sign(&self) -> f64 {
        match self.kind {
            Kind::Iaf => 1.0,
            Kind::Maf => -1.0,
        }
    }

    fn mu_s(&self, raw: &[f64], i: usize) -> (f64, f64, f64) {
        let d = self.order.len();
        let th = raw[d + i].tanh();
        (raw[i], self.scale_bound * th, th)
    }

    /// One entry of the one-pass map: `w` from `y`.
    fn apply(&self, y: f64, mu: f64, s: f64) -> f64 {
        match self.kind {
            Kind::Maf => (y - mu) * (-s).exp(),
            Kind::Iaf => y * s.exp() + mu,
        }
    }

    /// One entry of the sequential direction: `y` from `w`.
    fn solve(&self, w: f64, mu: f64, s: f64) -> f64 {
        match self.kind {
            Kind::Maf => mu + s.exp() * w,
            Kind::Iaf => (w - mu) * (-s).exp(),
        }
    }

    fn local(&self, y: f64, w: f64, s: f64, th: f64) -> Local {
        let ds_draw = self.scale_bound * (1.0 - th * th);
        match self.kind {
            Kind::Maf => Local { diag: (-s).exp(), d_mu: -(-s).exp(), d_s: -w, ds_draw },
            Kind::Iaf => Local { diag: s.exp(), d_mu: 1.0, d_s: y * s.exp(), ds_draw },
        }
    }

    fn log_det_of(&self, raw: &Batch, sign: f64) -> Vec<f64> {
        let d = self.order.len();
        raw.as_slice().chunks_exact(2 * d).map(|c| sign * (0..d).map(|i| self.mu_s(c, i).1).sum::<f64>()).collect()
    }

    /// `w = P(y)` with `log|det dP/dy|`.
    fn one_pass(&self, y: &Batch, record: bool) -> Pass {
        let d = self.order.len();
        let (raw, net) = self.made.forward(y.clone(), record);
        let mut w = y.clone();
        for (wc, rc) in w.as_mut_slice().chunks_exact_mut(d).zip(raw.as_slice().chunks_exact(2 * d)) {
            for (i, v) in wc.iter_mut().enumerate() {
                let (mu, s, _) = self.mu_s(rc, i);
                *v = self.apply(*v, mu, s);
            }
        }
        let log_det = self.log_det_of(&raw, self.sign());
        let tape = net.map(|net| Tape::new(ArTape { sequential: false, net, raw, y: y.clone(), w: w.clone() }));
        Pass { out: w, log_det, tape }
    }

    /// `y = P^-1(w)`, coordinate by coordinate in the order, with `log|det dP^-1/dw|`. The
    /// outputs at position `k` depend only on positions `< k`, so after the last step every
    /// network output is the one at the final `y` (the last coordinate feeds no output): that
    /// pass is the one taped.
    fn sequential(&self, w: &Batch, record: bool) -> Pass {
        let d = self.order.len();
        let mut y = Batch::zeros(d, w.ncols());
        let mut last = None;
        for (k, &i) in self.order.iter().enumerate() {
            let (raw, net) = self.made.forward(y.clone(), record && k + 1 == d);
            for ((yc, wc), rc) in y
                .as_mut_slice()
                .chunks_exact_mut(d)
                .zip(w.as_slice().chunks_exact(d))
                .zip(raw.as_slice().chunks_exact(2 * d))
            {
                let (mu, s, _) = self.mu_s(rc, i);
                yc[i] = self.solve(wc[i], mu, s);
            }
            if k + 1 == d {
                last = Some((raw, net));
            }
        }
        let (raw, net) = last.expect("dimension is at least 1");
        let log_det = self.log_det_of(&raw, -self.sign());
        let tape = net.map(|net| Tape::new(ArTape { sequential: true, net, raw, y: y.clone(), w: w.clone() }));
        Pass { out: y, log_det, tape }
    }

    /// Partials of every entry, column-major `d x n`, from a tape.
    fn locals(&self, t: &ArTape) -> Vec<Local> {
        let d = self.order.len();
        let mut out = Vec::with_capacity(t.y.len());
        for ((yc, wc), rc) in
            t.y.as_slice().chunks_exact(d).zip(t.w.as_slice().chunks_exact(d)).zip(t.raw.as_slice().chunks_exact(2 * d))
        {
            for i in 0..d {
                let (_, s, th) = self.mu_s(rc, i);
                out.push(self.local(yc[i], wc[i], s, th));
            }
        }
        out
    }

    fn backward(
        &self,
        tape: &Tape,
        g_out: &Batch,
        g_log_det: &[f64],
        g_params: Option<&mut [f64]>,
        sequential: bool,
    ) -> Result<Batch> {
        let t = tape.get::<ArTape>().ok_or_else(|| Error::Other("autoregressive layer given a foreign tape".into()))?;
        if t.sequential != sequential {
            return Err(Error::Other("autoregressive tape recorded in the other direction".into()));
        }
        let (d, n) = t.y.shape();
        check_dim("autoregressive cotangent rows", g_out.nrows(), d)?;
        check_dim("autoregressive cotangent columns", g_out.ncols(), n)?;
        check_dim("autoregressive log-det cotangent length", g_log_det.len(), n)?;
        if let Some(gp) = g_params.as_deref() {
            check_dim("autoregressive parameter cotangent length", gp.len(), self.made.n_params())?;
        }
        let loc = self.locals(t);
        let sign = self.sign();
        if !sequential {
            return Ok(self.one_pass_backward(t, &loc, g_out, g_log_det, g_params));
        }
        // y = P^-1(w), log-det -sign * sum s(y). Explicit cotangent of y: u = g_y + d(-sign g_ld sum s)/dy.
        let mut g_raw = Batch::zeros(2 * d, n);
        for j in 0..n {
            for i in 0..d {
                g_raw[(d + i, j)] = -sign * g_log_det[j] * loc[j * d + i].ds_draw;
            }
        }
        let u = g_out + self.made.backward(&t.net, g_raw, None);
        // Back substitution for J^T v = u, positions from last to first; `r` collects the
        // network part of J^T v from the positions already solved.
        let mut v = Batch::zeros(d, n);
        let mut r = Batch::zeros(d, n);
        for (k, &i) in self.order.iter().enumerate().rev() {
            for j in 0..n {
                v[(i, j)] = (u[(i, j)] - r[(i, j)]) / loc[j * d + i].diag;
            }
            if k > 0 {
                let mut g_raw = Batch::zeros(2 * d, n);
                for j in 0..n {
                    let l = &loc[j * d + i];
                    g_raw[(i, j)] = v[(i, j)] * l.d_mu;
                    g_raw[(d + i, j)] = v[(i, j)] * l.d_s * l.ds_draw;
                }
                r += self.made.backward(&t.net, g_raw, None);
            }
        }
        if let Some(gp) = g_params {
            // g_theta = -(dP/dtheta)^T v - sign g_ld d(sum s)/dtheta.
            let mut g_raw = Batch::zeros(2 * d, n);
            for j in 0..n {
                for i in 0..d {
                    let l = &loc[j * d + i];
                    g_raw[(i, j)] = -v[(i, j)] * l.d_mu;
                    g_raw[(d + i, j)] = (-v[(i, j)] * l.d_s - sign * g_log_det[j]) * l.ds_draw;
                }
            }
            self.made.backward(&t.net, g_raw, Some(gp));
        }
        Ok(v)
    }

    /// The VJP of the one-pass map `w = P(y)` at the `y` of a tape of either direction (both
    /// keep the network's pass at `y`), log-det `sign * sum s`:
    /// `g_y = g_w diag + net^T (g_w d_mu, (g_w d_s + sign g_ld) ds)`.
    fn one_pass_backward(
        &self,
        t: &ArTape,
        loc: &[Local],
        g_out: &Batch,
        g_log_det: &[f64],
        g_params: Option<&mut [f64]>,
    ) -> Batch {
        let (d, n) = t.y.shape();
        let sign = self.sign();
        let mut g_raw = Batch::zeros(2 * d, n);
        let mut g_in = g_out.clone();
        for j in 0..n {
            for i in 0..d {
                let (l, g) = (&loc[j * d + i], g_out[(i, j)]);
                g_raw[(i, j)] = g * l.d_mu;
                g_raw[(d + i, j)] = (g * l.d_s + sign * g_log_det[j]) * l.ds_draw;
                g_in[(i, j)] = g * l.diag;
            }
        }
        g_in += self.made.backward(&t.net, g_raw, g_params);
        g_in
    }

    /// Whether a pass in `direction` solves coordinate by coordinate (MAF sampling, IAF density).
    fn is_sequential(&self, direction: Direction) -> bool {
        let one_pass_is_forward = self.kind == Kind::Iaf;
        direction.is_inverse() == one_pass_is_forward
    }
}

impl Bijection for Autoregressive {
    fn dim(&self) -> usize {
        self.order.len()
    }

    fn n_params(&self) -> usize {
        self.made.n_params()
    }

    fn pass(&self, direction: Direction, input: &Batch, record: bool) -> Result<Pass> {
        check_dim("autoregressive input rows", input.nrows(), self.dim())?;
        Ok(if self.is_sequential(direction) { self.sequential(input, record) } else { self.one_pass(input, record) })
    }

    /// The sequential direction's score is the one-pass map's VJP at its output with
    /// cotangents `(score, 1)`, and its tape already holds the network's pass there: one network
    /// VJP. The one-pass direction keeps the provided version (a sequential pass at its output).
    fn pass_with_score(
        &self,
        direction: Direction,
        input: &Batch,
        score: &Batch,
        record: bool,
    ) -> Result<(Pass, Batch)> {
        if !self.is_sequential(direction) {
            return score_by_opposite_pass(self, direction, input, score, record);
        }
        check_dim("autoregressive input rows", input.nrows(), self.dim())?;
        check_dim("autoregressive score rows", score.nrows(), self.dim())?;
        check_dim("autoregressive score columns", score.ncols(), input.ncols())?;
        let mut pass = self.sequential(input, true);
        let tape = pass.tape.take().ok_or_else(|| Error::Other("autoregressive layer recorded no tape".into()))?;
        let t = tape.get::<ArTape>().ok_or_else(|| Error::Other("autoregressive layer given a foreign tape".into()))?;
        let s = self.one_pass_backward(t, &self.locals(t), score, &vec![1.0; input.ncols()], None);
        pass.tape = record.then_some(tape);
        Ok((pass, s))
    }

    fn vjp(&self, direction: Direction, tape: &Tape, g: Cotangent<'_>) -> Result<Batch> {
        self.backward(tape, g.out, g.log_det, g.params, self.is_sequential(direction))
    }

    fn params(&self) -> Vec<f64> {
        self.made.params().to_vec()
    }

    fn load_params(&mut self, params: &[f64]) -> Result<()> {
        self.made.set_params(params);
        Ok(())
    }
}
