//! The conditioner: a dense network evaluated on a whole batch at once, one GEMM per layer,
//! with a hand-written backward pass.
//!
//! Parameters are one vector, layer by layer: the weight matrix `W_l` (`out x in`, column-major)
//! followed by the bias `b_l`. Hidden layers apply the activation; the last layer is linear.
//!
//! The parameters are always f64 (the optimiser's copy). With [`Precision::Mixed`] the network
//! also keeps an f32 copy, refreshed whenever the parameters are set, and a pass runs its
//! products, activations and backward step in f32: inputs and output cotangents are rounded to
//! f32 on entry, outputs and input cotangents widened to f64 on exit, and parameter gradients
//! (accumulated over the batch in f32) are added to the caller's f64 gradient.

use nalgebra::{DMatrix, DMatrixView};

use bootflow_core::{Batch, Rng, rng};

use crate::activation::Activation;
use crate::gemm::{gemm, plain, transposed};
use crate::precision::{Precision, Weights};
use crate::real::Real;

/// Dense network `widths[0] -> widths[1] -> ... -> widths[last]`.
#[derive(Clone, Debug)]
pub struct Mlp {
    widths: Vec<usize>,
    activation: Activation,
    weights: Weights,
    /// Start of `W_l` in the parameters; `b_l` follows it.
    offsets: Vec<usize>,
}

/// Activations of a recorded pass in its scalar type: the input of every layer and, only for
/// activations whose derivative needs them, the pre-activations of the hidden layers.
struct Record<T: Real> {
    inputs: Vec<DMatrix<T>>,
    pre: Vec<DMatrix<T>>,
}

/// A recorded pass, in the precision it ran in.
pub struct MlpTape(TapeData);

enum TapeData {
    F64(Record<f64>),
    F32(Record<f32>),
}

impl Mlp {
    /// A network with hidden weights drawn from `rng` (He or Glorot, see
    /// [`Activation::init_std`]), zero biases, and last-layer weights of standard deviation
    /// `last_scale / sqrt(fan_in)` (zero for `last_scale = 0`, making the output identically 0).
    pub fn new(widths: &[usize], activation: Activation, last_scale: f64, rng: &mut Rng) -> Self {
        let mut offsets = Vec::with_capacity(widths.len());
        let mut n = 0;
        for w in widths.windows(2) {
            offsets.push(n);
            n += w[1] * w[0] + w[1];
        }
        let mut params = vec![0.0; n];
        let layers = widths.len() - 1;
        for l in 0..layers {
            let (fan_in, fan_out) = (widths[l], widths[l + 1]);
            let std = if l + 1 == layers {
                last_scale / (fan_in as f64).sqrt()
            } else {
                activation.init_std(fan_in, fan_out)
            };
            let w = &mut params[offsets[l]..offsets[l] + fan_in * fan_out];
            if std != 0.0 {
                rng::fill_normal(rng, w);
                w.iter_mut().for_each(|v| *v *= std);
            }
        }
        Self { widths: widths.to_vec(), activation, weights: Weights::new(params), offsets }
    }

    /// The same network running its passes in `precision`.
    pub fn with_precision(mut self, precision: Precision) -> Self {
        self.weights = self.weights.with_precision(precision);
        self
    }

    /// The precision the passes run in.
    pub fn precision(&self) -> Precision {
        self.weights.precision
    }

    /// Number of parameters (weights and biases of every layer).
    pub fn n_params(&self) -> usize {
        self.weights.f64.len()
    }

    /// The parameters, layer by layer: weight matrix column-major, then bias.
    pub fn params(&self) -> &[f64] {
        &self.weights.f64
    }

    /// Replaces the parameters; the caller checks the length.
    pub fn set_params(&mut self, p: &[f64]) {
        self.weights.set(p);
    }

    fn layers(&self) -> usize {
        self.widths.len() - 1
    }

    /// `(weights, bias)` ranges of layer `l` in the parameter vector.
    fn ranges(&self, l: usize) -> (std::ops::Range<usize>, std::ops::Range<usize>) {
        let w_end = self.offsets[l] + self.widths[l] * self.widths[l + 1];
        (self.offsets[l]..w_end, w_end..w_end + self.widths[l + 1])
    }

    /// Output (`widths[last] x n`) for the input batch, and the tape when `record`.
    pub fn forward(&self, x: Batch, record: bool) -> (Batch, Option<MlpTape>) {
        match self.weights.precision {
            Precision::F64 => {
                let (out, rec) = self.forward_in(&self.weights.f64, x, record);
                (out, rec.map(|r| MlpTape(TapeData::F64(r))))
            }
            Precision::Mixed => {
                let (out, rec) = self.forward_in(&self.weights.f32, x.map(|v| v as f32), record);
                (out.map(f64::from), rec.map(|r| MlpTape(TapeData::F32(r))))
            }
        }
    }

    /// Cotangent of the input given the cotangent of the output; adds the parameter cotangent
    /// (summed over the batch) into `g_params` when given.
    pub fn backward(&self, tape: &MlpTape, g_out: Batch, g_params: Option<&mut [f64]>) -> Batch {
        match &tape.0 {
            TapeData::F64(rec) => self.backward_in(&self.weights.f64, rec, g_out, g_params),
            TapeData::F32(rec) => {
                let mut g32 = g_params.as_ref().map(|_| vec![0.0f32; self.n_params()]);
                let g_in = self.backward_in(&self.weights.f32, rec, g_out.map(|v| v as f32), g32.as_deref_mut());
                if let (Some(gp), Some(g32)) = (g_params, g32) {
                    gp.iter_mut().zip(&g32).for_each(|(g, v)| *g += f64::from(*v));
                }
                g_in.map(f64::from)
            }
        }
    }

    /// [`Mlp::forward`] with the parameters `params` in the pass's scalar type.
    fn forward_in<T: Real>(&self, params: &[T], x: DMatrix<T>, record: bool) -> (DMatrix<T>, Option<Record<T>>) {
        let n = x.ncols();
        let mut inputs = Vec::with_capacity(if record { self.layers() } else { 0 });
        let mut pre = Vec::new();
        let mut h = x;
        for l in 0..self.layers() {
            let (wr, br) = self.ranges(l);
            let (fan_in, fan_out) = (self.widths[l], self.widths[l + 1]);
            let bias = &params[br];
            // The bias in every column, written once (no zero fill first).
            let mut buf = Vec::with_capacity(fan_out * n);
            (0..n).for_each(|_| buf.extend_from_slice(bias));
            let mut a = DMatrix::from_vec(fan_out, n, buf);
            let (w, x) = (&params[wr], h.as_slice());
            gemm(fan_out, fan_in, n, w, plain(fan_out), x, plain(fan_in), T::ONE, a.as_mut_slice());
            let last = l + 1 == self.layers();
            let act = self.activation;
            let next = if last {
                a
            } else if record && act.needs_pre() {
                let out = a.map(|v| act.apply(v));
                pre.push(a);
                out
            } else {
                a.apply(|v| *v = act.apply(*v));
                a
            };
            if record {
                inputs.push(h);
            }
            h = next;
        }
        (h, record.then_some(Record { inputs, pre }))
    }

    /// [`Mlp::backward`] with the parameters `params` in the pass's scalar type.
    fn backward_in<T: Real>(
        &self,
        params: &[T],
        tape: &Record<T>,
        g_out: DMatrix<T>,
        mut g_params: Option<&mut [T]>,
    ) -> DMatrix<T> {
        let mut g = g_out;
        for l in (0..self.layers()).rev() {
            let (wr, br) = self.ranges(l);
            let (fan_in, fan_out) = (self.widths[l], self.widths[l + 1]);
            let input = &tape.inputs[l];
            let n = g.ncols();
            if let Some(gp) = g_params.as_deref_mut() {
                // dW += G X^T, db += row sums of G.
                let (x, dw) = (input.as_slice(), &mut gp[wr.clone()]);
                gemm(fan_out, n, fan_in, g.as_slice(), plain(fan_out), x, transposed(fan_in), T::ONE, dw);
                let db = &mut gp[br];
                for col in g.as_slice().chunks_exact(fan_out) {
                    db.iter_mut().zip(col).for_each(|(d, v)| *d += *v);
                }
            }
            let mut g_in = DMatrix::from_element(fan_in, n, T::ZERO);
            let w = &params[wr];
            gemm(
                fan_in,
                fan_out,
                n,
                w,
                transposed(fan_out),
                g.as_slice(),
                plain(fan_out),
                T::ZERO,
                g_in.as_mut_slice(),
            );
            if l > 0 {
                let act = self.activation;
                let h = input;
                let a = if act.needs_pre() { &tape.pre[l - 1] } else { h };
                if act == Activation::Relu {
                    // The same products as `derivative` (g * 1 or g * 0), in a branch-free loop
                    // the compiler vectorises.
                    for (gv, hv) in g_in.as_mut_slice().iter_mut().zip(h.as_slice()) {
                        *gv *= if *hv > T::ZERO { T::ONE } else { T::ZERO };
                    }
                } else {
                    for ((gv, av), hv) in g_in.as_mut_slice().iter_mut().zip(a.as_slice()).zip(h.as_slice()) {
                        *gv *= act.derivative(*av, *hv);
                    }
                }
            }
            g = g_in;
        }
        g
    }

    /// Smallest |pre-activation| of the hidden layers in a recorded pass (how far it is from a
    /// ReLU kink), recomputed in f64 from the recorded layer inputs; tests use it to keep finite
    /// differences away from kinks.
    pub fn min_abs_pre_activation(&self, tape: &MlpTape) -> f64 {
        let inputs: Vec<Batch> = match &tape.0 {
            TapeData::F64(r) => r.inputs.clone(),
            TapeData::F32(r) => r.inputs.iter().map(|m| m.map(f64::from)).collect(),
        };
        let mut m = f64::INFINITY;
        for (l, input) in inputs.iter().enumerate().take(self.layers() - 1) {
            let (wr, br) = self.ranges(l);
            let w = DMatrixView::from_slice(&self.weights.f64[wr], self.widths[l + 1], self.widths[l]);
            let a = w * input;
            for col in a.as_slice().chunks_exact(self.widths[l + 1]) {
                m = col.iter().zip(&self.weights.f64[br.clone()]).fold(m, |m, (v, b)| m.min((v + b).abs()));
            }
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bootflow_core::testing::{fd_gradient, random_batch, rel_error};

    /// `sum(G .* net(X))`, the scalar whose gradients the backward pass gives.
    fn contract(net: &Mlp, x: &Batch, g: &Batch) -> f64 {
        g.dot(&net.forward(x.clone(), false).0)
    }

    #[test]
    fn backward_matches_finite_differences() {
        let mut r = rng::stream(3, 0);
        for act in [Activation::Tanh, Activation::Silu, Activation::Elu, Activation::LeakyRelu] {
            let mut net = Mlp::new(&[7, 9, 6, 8], act, 1.0, &mut r);
            let x = random_batch(7, 11, &mut r);
            let g = random_batch(8, 11, &mut r);
            let (out, tape) = net.forward(x.clone(), true);
            assert_eq!(out, net.forward(x.clone(), false).0);
            let mut gp = vec![0.0; net.n_params()];
            let gx = net.backward(tape.as_ref().unwrap(), g.clone(), Some(&mut gp));
            let fd = fd_gradient(
                &mut |v| contract(&net, &Batch::from_column_slice(7, 11, v), &g),
                x.as_slice(),
                &(0..77).collect::<Vec<_>>(),
                1e-5,
            );
            assert!(rel_error(gx.as_slice(), &fd) < 1e-7, "{act:?} input");
            let theta = net.params().to_vec();
            let idx: Vec<usize> = (0..theta.len()).collect();
            let fd = fd_gradient(
                &mut |t| {
                    net.set_params(t);
                    contract(&net, &x, &g)
                },
                &theta,
                &idx,
                1e-5,
            );
            assert!(rel_error(&gp, &fd) < 1e-7, "{act:?} params");
        }
    }

    /// Largest element-wise difference of `a` and `b` relative to the largest |b|.
    fn scaled_gap(a: &[f64], b: &[f64]) -> f64 {
        let scale = b.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        a.iter().zip(b).fold(0.0f64, |m, (x, y)| m.max((x - y).abs())) / scale
    }

    #[test]
    fn mixed_precision_agrees_with_f64_to_f32_rounding() {
        let mut r = rng::stream(5, 0);
        for act in [Activation::Relu, Activation::Tanh, Activation::Silu] {
            let net = Mlp::new(&[8, 64, 64, 6], act, 1.0, &mut r);
            let mixed = net.clone().with_precision(Precision::Mixed);
            let x = random_batch(8, 33, &mut r);
            let g = random_batch(6, 33, &mut r);
            let (out, tape) = net.forward(x.clone(), true);
            let (out32, tape32) = mixed.forward(x, true);
            let mut gp = vec![0.0; net.n_params()];
            let mut gp32 = vec![0.0; net.n_params()];
            let gx = net.backward(tape.as_ref().unwrap(), g.clone(), Some(&mut gp));
            let gx32 = mixed.backward(tape32.as_ref().unwrap(), g, Some(&mut gp32));
            // f32 has a unit round-off of 6e-8; sums of 64 products of O(1) terms lose a few
            // hundred ulps at most relative to the largest entry, far below 1e-5, while any
            // wrong term (a missing bias, a wrong transpose) moves entries by O(1).
            for (name, a, b) in [("output", &out32, &out), ("input cotangent", &gx32, &gx)] {
                let gap = scaled_gap(a.as_slice(), b.as_slice());
                assert!(gap < 1e-5 && gap > 0.0, "{act:?} {name}: {gap}");
            }
            let gap = scaled_gap(&gp32, &gp);
            assert!(gap < 1e-5 && gap > 0.0, "{act:?} parameter gradient: {gap}");
        }
    }

    #[test]
    fn zero_last_layer_gives_zero_output() {
        let mut r = rng::stream(4, 0);
        let net = Mlp::new(&[3, 5, 4], Activation::Relu, 0.0, &mut r);
        let (out, _) = net.forward(random_batch(3, 6, &mut r), false);
        assert!(out.iter().all(|v| *v == 0.0));
        // The hidden layer is not zero: the network can learn from its first gradient step.
        assert!(net.params()[..15].iter().any(|v| *v != 0.0));
    }
}
