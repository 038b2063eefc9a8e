//! The convolutional conditioner of a coupling on an `L x L` periodic lattice: the frozen sites'
//! values are placed on the lattice (zeros on the active sites), a stack of `k x k` convolutions
//! with circular padding maps that one channel to the coupling's outputs per site, and the
//! outputs at the active sites are read off. Every convolution is one matrix product: the input
//! is unfolded (im2col) so that column `(site, sample)` holds the `k^2 C_in` values its kernel
//! sees, and `W` (`C_out x k^2 C_in`) multiplies all columns of the batch at once.
//!
//! Activations are stored channel-fastest: element `(c, site, sample)` of a `C`-channel map is at
//! `c + C (site + V sample)`, `V = L^2`. Row `o C_in + c` of the unfolded input is channel `c` at
//! the neighbour of offset `o` (`o = (dr + k/2) k + (dc + k/2)`, `|dr|, |dc| <= k/2`). Parameters
//! are layer by layer, `W_l` column-major then the bias `b_l`, as in [`crate::mlp`]. The last
//! layer is linear. Precision works as for the dense network: under [`Precision::Mixed`] the
//! products, activations and backward pass run in f32 from an f32 copy of the parameters.

use bootflow_core::{Batch, Rng, rng};

use crate::activation::Activation;
use crate::gemm::{gemm, plain, transposed};
use crate::precision::{Precision, Weights};
use crate::real::Real;

/// Columns (site, sample) per block of a convolution's products.
const BLOCK_COLUMNS: usize = 2048;

/// A stack of periodic convolutions on an `L x L` lattice with a fixed input and output site set.
#[derive(Clone, Debug)]
pub struct Conv {
    side: usize,
    kernel: usize,
    /// Channels of every map: `1`, the hidden channels, the output channels.
    channels: Vec<usize>,
    activation: Activation,
    weights: Weights,
    /// Start of `W_l` in the parameters; `b_l` follows it.
    offsets: Vec<usize>,
    /// `neighbours[o * V + s]`: the site at kernel offset `o` from site `s`.
    neighbours: Vec<usize>,
    /// The lattice sites of the input rows, in row order.
    in_sites: Vec<usize>,
    /// For every output row, its element `c + C_last * site` of one sample's last map.
    out_index: Vec<usize>,
}

/// Every layer's input map and, for activations that need them, the hidden pre-activations.
struct Record<T> {
    inputs: Vec<Vec<T>>,
    pre: Vec<Vec<T>>,
}

/// A recorded pass, in the precision it ran in.
pub struct ConvTape(TapeData);

enum TapeData {
    F64(Record<f64>),
    F32(Record<f32>),
}

impl Conv {
    /// A network on an `side x side` lattice reading the sites `in_sites` (one input row each)
    /// and writing output row `r` from channel `out_rows[r].1` at site `out_rows[r].0`.
    /// `channels` are the hidden channels followed by the output channels. Hidden weights come
    /// from `rng` (He or Glorot with fan-in `k^2 C_in`, see [`Activation::init_std`]), biases are
    /// zero, and last-layer weights have standard deviation `last_scale / sqrt(k^2 C_in)`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        side: usize,
        kernel: usize,
        channels: &[usize],
        activation: Activation,
        last_scale: f64,
        in_sites: &[usize],
        out_rows: &[(usize, usize)],
        rng: &mut Rng,
    ) -> Self {
        let mut all = vec![1];
        all.extend_from_slice(channels);
        let taps = kernel * kernel;
        let mut offsets = Vec::with_capacity(channels.len());
        let mut n = 0;
        for w in all.windows(2) {
            offsets.push(n);
            n += w[1] * taps * w[0] + w[1];
        }
        let mut params = vec![0.0; n];
        let layers = channels.len();
        for l in 0..layers {
            let (fan_in, fan_out) = (taps * all[l], taps * all[l + 1]);
            let std = if l + 1 == layers {
                last_scale / (fan_in as f64).sqrt()
            } else {
                activation.init_std(fan_in, fan_out)
            };
            let w = &mut params[offsets[l]..offsets[l] + fan_in * all[l + 1]];
            if std != 0.0 {
                rng::fill_normal(rng, w);
                w.iter_mut().for_each(|v| *v *= std);
            }
        }
        let v = side * side;
        let half = (kernel / 2) as isize;
        let wrap = |i: usize, d: isize| (i as isize + d).rem_euclid(side as isize) as usize;
        let mut neighbours = Vec::with_capacity(taps * v);
        for o in 0..taps {
            let (dr, dc) = ((o / kernel) as isize - half, (o % kernel) as isize - half);
            neighbours.extend((0..v).map(|s| wrap(s / side, dr) * side + wrap(s % side, dc)));
        }
        let c_last = all[layers];
        let out_index = out_rows.iter().map(|&(site, c)| c + c_last * site).collect();
        Self {
            side,
            kernel,
            channels: all,
            activation,
            weights: Weights::new(params),
            offsets,
            neighbours,
            in_sites: in_sites.to_vec(),
            out_index,
        }
    }

    /// The same network running its passes in `precision`.
    pub fn with_precision(mut self, precision: Precision) -> Self {
        self.weights = self.weights.with_precision(precision);
        self
    }

    /// Number of parameters.
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
        self.channels.len() - 1
    }

    fn sites(&self) -> usize {
        self.side * self.side
    }

    /// Multiply-adds of one sample's products in one pass (forward), for FLOP counts.
    pub fn macs_per_sample(&self) -> usize {
        let taps = self.kernel * self.kernel;
        self.channels.windows(2).map(|w| w[1] * taps * w[0]).sum::<usize>() * self.sites()
    }

    fn ranges(&self, l: usize) -> (std::ops::Range<usize>, std::ops::Range<usize>) {
        let (c_in, c_out) = (self.channels[l], self.channels[l + 1]);
        let w_end = self.offsets[l] + c_out * self.kernel * self.kernel * c_in;
        (self.offsets[l]..w_end, w_end..w_end + c_out)
    }

    /// Output (one row per output row given at construction) for the input batch, and the tape
    /// when `record`.
    pub fn forward(&self, x: Batch, record: bool) -> (Batch, Option<ConvTape>) {
        match self.weights.precision {
            Precision::F64 => {
                let (out, rec) = self.forward_in(&self.weights.f64, &x, record);
                (out, rec.map(|r| ConvTape(TapeData::F64(r))))
            }
            Precision::Mixed => {
                let (out, rec) = self.forward_in(&self.weights.f32, &x.map(|v| v as f32), record);
                (out.map(f64::from), rec.map(|r| ConvTape(TapeData::F32(r))))
            }
        }
    }

    /// Cotangent of the input given the cotangent of the output; adds the parameter cotangent
    /// (summed over the batch) into `g_params` when given.
    pub fn backward(&self, tape: &ConvTape, g_out: Batch, g_params: Option<&mut [f64]>) -> Batch {
        match &tape.0 {
            TapeData::F64(rec) => self.backward_in(&self.weights.f64, rec, &g_out, g_params),
            TapeData::F32(rec) => {
                let mut g32 = g_params.as_ref().map(|_| vec![0.0f32; self.n_params()]);
                let g_in = self.backward_in(&self.weights.f32, rec, &g_out.map(|v| v as f32), g32.as_deref_mut());
                if let (Some(gp), Some(g32)) = (g_params, g32) {
                    gp.iter_mut().zip(&g32).for_each(|(g, v)| *g += f64::from(*v));
                }
                g_in.map(f64::from)
            }
        }
    }

    /// The unfolded map: column `(s, j)` holds, for every offset `o`, the `c_in` channels of the
    /// neighbour `o` of site `s` in sample `j`.
    fn im2col<T: Real>(&self, h: &[T], c_in: usize) -> Vec<T> {
        let mut cols = Vec::new();
        self.im2col_into(h, c_in, false, &mut cols);
        cols
    }

    /// [`im2col`](Self::im2col) into `cols`, reusing its allocation; `reflected` reads offset
    /// `-o` in place of `o` (the kernel's offsets are symmetric: `-o` is offset `k^2 - 1 - o`).
    fn im2col_into<T: Real>(&self, h: &[T], c_in: usize, reflected: bool, cols: &mut Vec<T>) {
        let (v, taps) = (self.sites(), self.kernel * self.kernel);
        cols.clear();
        cols.reserve(taps * h.len());
        for sample in h.chunks_exact(c_in * v) {
            for s in 0..v {
                for o in 0..taps {
                    let o = if reflected { taps - 1 - o } else { o };
                    let t = self.neighbours[o * v + s];
                    cols.extend_from_slice(&sample[t * c_in..(t + 1) * c_in]);
                }
            }
        }
    }

    /// Samples per block of the products: about [`BLOCK_COLUMNS`] columns, so that a block's
    /// unfolded input stays in cache between its unfolding and its product.
    fn block_samples(&self) -> usize {
        (BLOCK_COLUMNS / self.sites()).max(1)
    }

    fn forward_in<T: Real>(
        &self,
        params: &[T],
        x: &nalgebra::DMatrix<T>,
        record: bool,
    ) -> (nalgebra::DMatrix<T>, Option<Record<T>>) {
        let (v, n, taps) = (self.sites(), x.ncols(), self.kernel * self.kernel);
        let mut h = vec![T::ZERO; v * n];
        for (lat, col) in h.chunks_exact_mut(v).zip(x.as_slice().chunks_exact(self.in_sites.len().max(1))) {
            self.in_sites.iter().zip(col).for_each(|(&s, val)| lat[s] = *val);
        }
        let mut rec = Record { inputs: Vec::new(), pre: Vec::new() };
        for l in 0..self.layers() {
            let (wr, br) = self.ranges(l);
            let (c_in, c_out) = (self.channels[l], self.channels[l + 1]);
            let bias = &params[br];
            let mut a = Vec::with_capacity(c_out * v * n);
            (0..v * n).for_each(|_| a.extend_from_slice(bias));
            let k = taps * c_in;
            let mut cols = Vec::new();
            let block = self.block_samples();
            for (hb, ab) in h.chunks(block * c_in * v).zip(a.chunks_mut(block * c_out * v)) {
                self.im2col_into(hb, c_in, false, &mut cols);
                gemm(c_out, k, ab.len() / c_out, &params[wr.clone()], plain(c_out), &cols, plain(k), T::ONE, ab);
            }
            let act = self.activation;
            let next = if l + 1 == self.layers() {
                a
            } else if record && act.needs_pre() {
                let out = a.iter().map(|z| act.apply(*z)).collect();
                rec.pre.push(a);
                out
            } else {
                a.iter_mut().for_each(|z| *z = act.apply(*z));
                a
            };
            if record {
                rec.inputs.push(h);
            }
            h = next;
        }
        let per_sample = self.channels[self.layers()] * v;
        let rows = self.out_index.len();
        let mut out = nalgebra::DMatrix::from_element(rows, n, T::ZERO);
        for (o, map) in out.as_mut_slice().chunks_exact_mut(rows.max(1)).zip(h.chunks_exact(per_sample)) {
            o.iter_mut().zip(&self.out_index).for_each(|(d, &i)| *d = map[i]);
        }
        (out, record.then_some(rec))
    }

    fn backward_in<T: Real>(
        &self,
        params: &[T],
        tape: &Record<T>,
        g_out: &nalgebra::DMatrix<T>,
        mut g_params: Option<&mut [T]>,
    ) -> nalgebra::DMatrix<T> {
        let (v, n, taps) = (self.sites(), g_out.ncols(), self.kernel * self.kernel);
        let last = self.layers();
        let per_sample = self.channels[last] * v;
        let mut g = vec![T::ZERO; per_sample * n];
        for (map, o) in g.chunks_exact_mut(per_sample).zip(g_out.as_slice().chunks_exact(self.out_index.len().max(1))) {
            self.out_index.iter().zip(o).for_each(|(&i, val)| map[i] += *val);
        }
        for l in (0..last).rev() {
            let (wr, br) = self.ranges(l);
            let (c_in, c_out) = (self.channels[l], self.channels[l + 1]);
            let k = taps * c_in;
            let input = &tape.inputs[l];
            let mut g_in = vec![T::ZERO; c_in * v * n];
            // The input cotangent is the correlation of G with the reflected kernel,
            // g_in(c, t) = sum_{o, c'} W(c', o C_in + c) G(c', t - offset(o)): one more product,
            // over G unfolded at the reflected offsets, with W's blocks transposed (Wr below).
            let kr = taps * c_out;
            let w = &params[wr.clone()];
            let mut w_reflected = vec![T::ZERO; c_in * kr];
            for o in 0..taps {
                for ci in 0..c_in {
                    for co in 0..c_out {
                        w_reflected[ci + c_in * (o * c_out + co)] = w[co + c_out * (o * c_in + ci)];
                    }
                }
            }
            let (mut cols, mut g_cols) = (Vec::new(), Vec::new());
            let block = self.block_samples();
            let blocks =
                g.chunks(block * c_out * v).zip(input.chunks(block * c_in * v)).zip(g_in.chunks_mut(block * c_in * v));
            for ((gb, hb), gib) in blocks {
                let cols_n = gb.len() / c_out;
                if let Some(gp) = g_params.as_deref_mut() {
                    // dW += G cols^T.
                    self.im2col_into(hb, c_in, false, &mut cols);
                    gemm(c_out, cols_n, k, gb, plain(c_out), &cols, transposed(k), T::ONE, &mut gp[wr.clone()]);
                }
                self.im2col_into(gb, c_out, true, &mut g_cols);
                gemm(c_in, kr, cols_n, &w_reflected, plain(c_in), &g_cols, plain(kr), T::ZERO, gib);
            }
            if let Some(gp) = g_params.as_deref_mut() {
                let db = &mut gp[br];
                for col in g.chunks_exact(c_out) {
                    db.iter_mut().zip(col).for_each(|(d, x)| *d += *x);
                }
            }
            if l > 0 {
                let act = self.activation;
                let a = if act.needs_pre() { &tape.pre[l - 1] } else { input };
                for ((gv, av), hv) in g_in.iter_mut().zip(a).zip(input) {
                    *gv *= act.derivative(*av, *hv);
                }
            }
            g = g_in;
        }
        let rows = self.in_sites.len();
        let mut g_x = nalgebra::DMatrix::from_element(rows, n, T::ZERO);
        for (gx, lat) in g_x.as_mut_slice().chunks_exact_mut(rows.max(1)).zip(g.chunks_exact(v)) {
            gx.iter_mut().zip(&self.in_sites).for_each(|(d, &s)| *d = lat[s]);
        }
        g_x
    }

    /// Smallest |pre-activation| of the hidden layers in a recorded pass, recomputed in f64;
    /// tests use it to keep finite differences away from kinks.
    pub fn min_abs_pre_activation(&self, tape: &ConvTape) -> f64 {
        let inputs: Vec<Vec<f64>> = match &tape.0 {
            TapeData::F64(r) => r.inputs.clone(),
            TapeData::F32(r) => r.inputs.iter().map(|m| m.iter().map(|v| f64::from(*v)).collect()).collect(),
        };
        let taps = self.kernel * self.kernel;
        let mut m = f64::INFINITY;
        for (l, input) in inputs.iter().enumerate().take(self.layers() - 1) {
            let (wr, br) = self.ranges(l);
            let (c_in, c_out) = (self.channels[l], self.channels[l + 1]);
            let cols = self.im2col(input, c_in);
            let cols_n = cols.len() / (taps * c_in);
            let mut a = Vec::with_capacity(c_out * cols_n);
            (0..cols_n).for_each(|_| a.extend_from_slice(&self.weights.f64[br.clone()]));
            gemm(
                c_out,
                taps * c_in,
                cols_n,
                &self.weights.f64[wr],
                plain(c_out),
                &cols,
                plain(taps * c_in),
                1.0,
                &mut a,
            );
            m = a.iter().fold(m, |m, v| m.min(v.abs()));
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bootflow_core::testing::{fd_gradient, random_batch, rel_error};

    /// A 5 x 5 lattice reading the even sites and writing two channels at the odd ones (as a
    /// checkerboard coupling does; raw row `c * 12 + i`).
    fn net(act: Activation, channels: &[usize], kernel: usize, seed: u64) -> Conv {
        let (even, odd): (Vec<usize>, Vec<usize>) = (0..25).partition(|&s| (s / 5 + s % 5) % 2 == 0);
        let out_rows: Vec<(usize, usize)> = (0..2).flat_map(|c| odd.iter().map(move |&s| (s, c))).collect();
        let mut c = channels.to_vec();
        c.push(2);
        let mut conv = Conv::new(5, kernel, &c, act, 1.0, &even, &out_rows, &mut rng::stream(seed, 0));
        // Non-zero biases, so that the checks see them.
        let mut p = conv.params().to_vec();
        let mut r = rng::stream(seed, 1);
        let mut noise = vec![0.0; p.len()];
        rng::fill_normal(&mut r, &mut noise);
        p.iter_mut().zip(&noise).for_each(|(v, e)| *v += 0.1 * e);
        conv.set_params(&p);
        conv
    }

    /// The convolution written out site by site: `out(c, s) = b_c + sum_{o, c'} W(c, o c_in + c')
    /// h(c', s + offset(o))` with indices wrapped around the lattice.
    fn direct(conv: &Conv, x: &[f64]) -> Vec<f64> {
        let (l, k) = (conv.side, conv.kernel as isize);
        let mut h = vec![0.0; l * l];
        conv.in_sites.iter().zip(x).for_each(|(&s, v)| h[s] = *v);
        let mut c_in = 1;
        for layer in 0..conv.layers() {
            let (wr, br) = conv.ranges(layer);
            let (w, b) = (&conv.params()[wr], &conv.params()[br]);
            let c_out = conv.channels[layer + 1];
            let mut out = vec![0.0; c_out * l * l];
            for s in 0..l * l {
                let (r, c) = ((s / l) as isize, (s % l) as isize);
                for co in 0..c_out {
                    let mut acc = b[co];
                    for dr in -(k / 2)..=k / 2 {
                        for dc in -(k / 2)..=k / 2 {
                            let t =
                                (r + dr).rem_euclid(l as isize) as usize * l + (c + dc).rem_euclid(l as isize) as usize;
                            let o = ((dr + k / 2) * k + dc + k / 2) as usize;
                            for ci in 0..c_in {
                                acc += w[co + c_out * (o * c_in + ci)] * h[ci + c_in * t];
                            }
                        }
                    }
                    out[co + c_out * s] = if layer + 1 == conv.layers() { acc } else { conv.activation.apply(acc) };
                }
            }
            h = out;
            c_in = c_out;
        }
        conv.out_index.iter().map(|&i| h[i]).collect()
    }

    #[test]
    fn forward_is_the_periodic_convolution() {
        for kernel in [1, 3, 5] {
            let conv = net(Activation::Tanh, &[3, 4], kernel, 7);
            let x = random_batch(13, 3, &mut rng::stream(8, 0));
            let (out, _) = conv.forward(x.clone(), false);
            for j in 0..3 {
                let want = direct(&conv, x.column(j).as_slice());
                let err = rel_error(out.column(j).as_slice(), &want);
                assert!(err < 1e-13, "kernel {kernel}: {err}");
            }
        }
    }

    /// `sum(G .* net(X))`, the scalar whose gradients the backward pass gives.
    fn contract(conv: &Conv, x: &Batch, g: &Batch) -> f64 {
        g.dot(&conv.forward(x.clone(), false).0)
    }

    #[test]
    fn backward_matches_finite_differences() {
        for (act, seed) in [(Activation::Tanh, 1), (Activation::LeakyRelu, 2), (Activation::Silu, 3)] {
            let mut conv = net(act, &[3, 2], 3, seed);
            let mut r = rng::stream(seed, 2);
            let x = random_batch(13, 4, &mut r);
            let g = random_batch(24, 4, &mut r);
            let (out, tape) = conv.forward(x.clone(), true);
            let tape = tape.unwrap();
            assert_eq!(out, conv.forward(x.clone(), false).0);
            if act == Activation::LeakyRelu {
                // The step 1e-5 moves pre-activations by about 1e-5: stay a margin from the kink.
                assert!(conv.min_abs_pre_activation(&tape) > 1e-3, "draw moved next to a kink");
            }
            let mut gp = vec![0.0; conv.n_params()];
            let gx = conv.backward(&tape, g.clone(), Some(&mut gp));
            let idx: Vec<usize> = (0..x.len()).collect();
            let fd = fd_gradient(
                &mut |v| contract(&conv, &Batch::from_column_slice(13, 4, v), &g),
                x.as_slice(),
                &idx,
                1e-5,
            );
            let err = rel_error(gx.as_slice(), &fd);
            assert!(err < 1e-7, "{act:?} input: {err}");
            let theta = conv.params().to_vec();
            let idx: Vec<usize> = (0..theta.len()).collect();
            let fd = fd_gradient(
                &mut |t| {
                    conv.set_params(t);
                    contract(&conv, &x, &g)
                },
                &theta,
                &idx,
                1e-5,
            );
            let err = rel_error(&gp, &fd);
            assert!(err < 1e-7, "{act:?} params: {err}");
        }
    }

    #[test]
    fn mixed_precision_agrees_with_f64_to_f32_rounding() {
        let conv = net(Activation::Tanh, &[8, 8], 3, 4);
        let mixed = conv.clone().with_precision(Precision::Mixed);
        let mut r = rng::stream(4, 3);
        let x = random_batch(13, 9, &mut r);
        let g = random_batch(24, 9, &mut r);
        let (out, tape) = conv.forward(x.clone(), true);
        let (out32, tape32) = mixed.forward(x, true);
        let mut gp = vec![0.0; conv.n_params()];
        let mut gp32 = vec![0.0; conv.n_params()];
        let gx = conv.backward(tape.as_ref().unwrap(), g.clone(), Some(&mut gp));
        let gx32 = mixed.backward(tape32.as_ref().unwrap(), g, Some(&mut gp32));
        // f32 rounding (6e-8 per operation, sums of a few hundred terms) stays far below 1e-5;
        // a wrong index moves entries by O(1).
        let scaled_gap = |a: &[f64], b: &[f64]| {
            let scale = b.iter().fold(0.0f64, |m, v| m.max(v.abs()));
            a.iter().zip(b).fold(0.0f64, |m, (x, y)| m.max((x - y).abs())) / scale
        };
        for (name, a, b) in [("output", out32.as_slice(), out.as_slice()), ("input", gx32.as_slice(), gx.as_slice())] {
            let err = scaled_gap(a, b);
            assert!(err < 1e-5 && err > 0.0, "{name}: {err}");
        }
        let err = scaled_gap(&gp32, &gp);
        assert!(err < 1e-5 && err > 0.0, "parameters: {err}");
    }

    #[test]
    fn zero_last_layer_gives_zero_output() {
        let conv =
            Conv::new(4, 3, &[5, 2], Activation::Relu, 0.0, &[0, 2, 5], &[(1, 0), (3, 1)], &mut rng::stream(1, 0));
        let (out, _) = conv.forward(random_batch(3, 4, &mut rng::stream(2, 0)), false);
        assert!(out.iter().all(|v| *v == 0.0));
        assert!(conv.params().iter().any(|v| *v != 0.0));
    }
}
