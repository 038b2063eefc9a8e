//! The conditioner: a dense network evaluated on a whole batch at once, one GEMM per layer,
//! with a hand-written backward pass.
//!
//! Parameters are one vector, layer by layer: the weight matrix `W_l` (`out x in`, column-major)
//! followed by the bias `b_l`. Hidden layers apply the activation; the last layer is linear.
//! Every product goes to matrixmultiply with explicit strides, so products with `W^T` and
//! `X^T` read the stored matrices in place and small shapes (a 1-wide input, a 2-row output)
//! use the same packed kernel as large ones.

use nalgebra::DMatrixView;

use bootflow_core::{Batch, Rng, rng};

use crate::activation::Activation;

/// Strides `(row, column)` of a matrix in a slice.
type Strides = (usize, usize);

/// Strides of a stored column-major matrix with `rows` rows.
fn plain(rows: usize) -> Strides {
    (1, rows)
}

/// Strides of the transpose of a stored column-major matrix with `rows` rows.
fn transposed(rows: usize) -> Strides {
    (rows, 1)
}

/// Whether every element of an `m x k` matrix with strides `s` lies inside `len` elements.
fn fits(m: usize, k: usize, s: Strides, len: usize) -> bool {
    m == 0 || k == 0 || (m - 1) * s.0 + (k - 1) * s.1 < len
}

/// `C = A B + beta C` for `A` (`m x k`) and `B` (`k x n`) given by strides, and `C` a contiguous
/// column-major `m x n` matrix.
#[allow(clippy::too_many_arguments)]
fn gemm(m: usize, k: usize, n: usize, a: &[f64], sa: Strides, b: &[f64], sb: Strides, beta: f64, c: &mut [f64]) {
    assert!(fits(m, k, sa, a.len()) && fits(k, n, sb, b.len()) && c.len() == m * n, "gemm shapes");
    // SAFETY: the assertion keeps every element matrixmultiply addresses inside its slice; `c`
    // is borrowed mutably and so aliases neither input.
    unsafe {
        matrixmultiply::dgemm(
            m,
            k,
            n,
            1.0,
            a.as_ptr(),
            sa.0 as isize,
            sa.1 as isize,
            b.as_ptr(),
            sb.0 as isize,
            sb.1 as isize,
            beta,
            c.as_mut_ptr(),
            1,
            m as isize,
        );
    }
}

/// Dense network `widths[0] -> widths[1] -> ... -> widths[last]`.
#[derive(Clone, Debug)]
pub struct Mlp {
    widths: Vec<usize>,
    activation: Activation,
    params: Vec<f64>,
    /// Start of `W_l` in `params`; `b_l` follows it.
    offsets: Vec<usize>,
}

/// Activations of a recorded pass: the input of every layer and, only for activations whose
/// derivative needs them, the pre-activations of the hidden layers.
pub struct MlpTape {
    inputs: Vec<Batch>,
    pre: Vec<Batch>,
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
        Self { widths: widths.to_vec(), activation, params, offsets }
    }

    pub fn n_params(&self) -> usize {
        self.params.len()
    }

    pub fn params(&self) -> &[f64] {
        &self.params
    }

    /// Replaces the parameters; the caller checks the length.
    pub fn set_params(&mut self, p: &[f64]) {
        self.params.copy_from_slice(p);
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
        let n = x.ncols();
        let mut inputs = Vec::with_capacity(if record { self.layers() } else { 0 });
        let mut pre = Vec::new();
        let mut h = x;
        for l in 0..self.layers() {
            let (wr, br) = self.ranges(l);
            let (fan_in, fan_out) = (self.widths[l], self.widths[l + 1]);
            let bias = &self.params[br];
            let mut a = Batch::zeros(fan_out, n);
            a.as_mut_slice().chunks_exact_mut(fan_out).for_each(|c| c.copy_from_slice(bias));
            let (w, x) = (&self.params[wr], h.as_slice());
            gemm(fan_out, fan_in, n, w, plain(fan_out), x, plain(fan_in), 1.0, a.as_mut_slice());
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
        (h, record.then_some(MlpTape { inputs, pre }))
    }

    /// Cotangent of the input given the cotangent of the output; adds the parameter cotangent
    /// (summed over the batch) into `g_params` when given.
    pub fn backward(&self, tape: &MlpTape, g_out: Batch, mut g_params: Option<&mut [f64]>) -> Batch {
        let mut g = g_out;
        for l in (0..self.layers()).rev() {
            let (wr, br) = self.ranges(l);
            let (fan_in, fan_out) = (self.widths[l], self.widths[l + 1]);
            let input = &tape.inputs[l];
            let n = g.ncols();
            if let Some(gp) = g_params.as_deref_mut() {
                // dW += G X^T, db += row sums of G.
                let (x, dw) = (input.as_slice(), &mut gp[wr.clone()]);
                gemm(fan_out, n, fan_in, g.as_slice(), plain(fan_out), x, transposed(fan_in), 1.0, dw);
                let db = &mut gp[br];
                for col in g.as_slice().chunks_exact(fan_out) {
                    db.iter_mut().zip(col).for_each(|(d, v)| *d += v);
                }
            }
            let mut g_in = Batch::zeros(fan_in, n);
            let w = &self.params[wr];
            gemm(fan_in, fan_out, n, w, transposed(fan_out), g.as_slice(), plain(fan_out), 0.0, g_in.as_mut_slice());
            if l > 0 {
                let act = self.activation;
                let h = input;
                let a = if act.needs_pre() { &tape.pre[l - 1] } else { h };
                if act == Activation::Relu {
                    // The same products as `derivative` (g * 1 or g * 0), in a branch-free loop
                    // the compiler vectorises.
                    for (gv, hv) in g_in.as_mut_slice().iter_mut().zip(h.as_slice()) {
                        *gv *= if *hv > 0.0 { 1.0 } else { 0.0 };
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
    /// ReLU kink), recomputed from the recorded layer inputs; tests use it to keep finite
    /// differences away from kinks.
    pub fn min_abs_pre_activation(&self, tape: &MlpTape) -> f64 {
        let mut m = f64::INFINITY;
        for l in 0..self.layers() - 1 {
            let (wr, br) = self.ranges(l);
            let w = DMatrixView::from_slice(&self.params[wr], self.widths[l + 1], self.widths[l]);
            let a = w * &tape.inputs[l];
            for col in a.as_slice().chunks_exact(self.widths[l + 1]) {
                m = col.iter().zip(&self.params[br.clone()]).fold(m, |m, (v, b)| m.min((v + b).abs()));
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
