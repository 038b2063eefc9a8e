//! MADE (Germain et al. 2015): a dense network whose output for coordinate `i` depends only on
//! the inputs earlier than `i` in a chosen order, enforced by multiplying weights with 0/1 masks
//! built from degrees.
//!
//! Degrees: input `i` has degree `pos(i) + 1` (1..D, its place in the order); hidden unit `k` of
//! every hidden layer has degree `k mod max(D - 1, 1) + 1`; a hidden unit sees a unit of the
//! layer below when its degree is `>=` that unit's; output `i` (both its shift and its raw
//! log-scale) sees a unit of the last hidden layer when its degree `pos(i) + 1` is strictly
//! larger. The network is the shared dense [`Mlp`] whose masked weights are held at exactly 0:
//! `set_params` zeroes them and their gradient is always 0, so the parameter layout is the
//! dense one (masked entries included) and `params()` returns them as 0.

use bootflow_core::{Batch, Rng};
use bootflow_nn::Activation;
use bootflow_nn::mlp::{Mlp, MlpTape};

/// Masked dense network `D -> hidden... -> 2D`: rows `0..D` of the output are the shifts,
/// rows `D..2D` the raw log-scales, coordinate by coordinate.
#[derive(Clone, Debug)]
pub struct Made {
    net: Mlp,
    /// 1.0 where a parameter is free, 0.0 where a mask removes it (biases are always free).
    keep: Vec<f64>,
}

/// 0/1 masks of every layer, each `out x in` column-major, for inputs ordered by `order`
/// (`order[k]` is the coordinate at position `k`).
fn masks(order: &[usize], hidden: &[usize]) -> Vec<Vec<f64>> {
    let d = order.len();
    let mut deg_in = vec![0usize; d];
    for (pos, &i) in order.iter().enumerate() {
        deg_in[i] = pos + 1;
    }
    let cycle = d.saturating_sub(1).max(1);
    let mut below = deg_in.clone();
    let mut out = Vec::with_capacity(hidden.len() + 1);
    for &h in hidden {
        let deg: Vec<usize> = (0..h).map(|k| k % cycle + 1).collect();
        out.push(connect(&below, &deg, |lo, hi| hi >= lo));
        below = deg;
    }
    let deg_out: Vec<usize> = deg_in.iter().chain(&deg_in).copied().collect();
    // With no hidden layer the inputs feed the outputs directly: the same strict rule applies.
    out.push(connect(&below, &deg_out, |lo, hi| hi > lo));
    out
}

fn connect(below: &[usize], above: &[usize], sees: impl Fn(usize, usize) -> bool) -> Vec<f64> {
    let mut m = vec![0.0; below.len() * above.len()];
    for (c, &lo) in below.iter().enumerate() {
        for (r, &hi) in above.iter().enumerate() {
            if sees(lo, hi) {
                m[c * above.len() + r] = 1.0;
            }
        }
    }
    m
}

impl Made {
    /// A masked network for `order`; hidden weights from `rng`, last layer zero (zero output).
    pub fn new(order: &[usize], hidden: &[usize], activation: Activation, rng: &mut Rng) -> Self {
        let d = order.len();
        let mut widths = vec![d];
        widths.extend_from_slice(hidden);
        widths.push(2 * d);
        let mut net = Mlp::new(&widths, activation, 0.0, rng);
        let mut keep = Vec::with_capacity(net.n_params());
        for (l, m) in masks(order, hidden).into_iter().enumerate() {
            keep.extend(m);
            keep.extend(std::iter::repeat_n(1.0, widths[l + 1]));
        }
        let p: Vec<f64> = net.params().iter().zip(&keep).map(|(a, k)| a * k).collect();
        net.set_params(&p);
        Self { net, keep }
    }

    pub fn n_params(&self) -> usize {
        self.net.n_params()
    }

    pub fn params(&self) -> &[f64] {
        self.net.params()
    }

    /// Replaces the parameters, zeroing the masked ones; the caller checks the length.
    pub fn set_params(&mut self, p: &[f64]) {
        let masked: Vec<f64> = p.iter().zip(&self.keep).map(|(a, k)| a * k).collect();
        self.net.set_params(&masked);
    }

    pub fn forward(&self, x: Batch, record: bool) -> (Batch, Option<MlpTape>) {
        self.net.forward(x, record)
    }

    /// Input cotangent; adds the (masked) parameter cotangent into `g_params` when given.
    pub fn backward(&self, tape: &MlpTape, g_out: Batch, g_params: Option<&mut [f64]>) -> Batch {
        match g_params {
            None => self.net.backward(tape, g_out, None),
            Some(gp) => {
                let mut dense = vec![0.0; self.n_params()];
                let g = self.net.backward(tape, g_out, Some(&mut dense));
                gp.iter_mut().zip(dense.iter().zip(&self.keep)).for_each(|(a, (b, k))| *a += b * k);
                g
            }
        }
    }

    /// Whether a parameter is free (not removed by a mask).
    #[cfg(test)]
    pub fn is_free(&self, k: usize) -> bool {
        self.keep[k] != 0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bootflow_core::{rng, testing};

    /// Output `i` changes with input `j` only when `j` comes before `i` in the order: checked by
    /// perturbing one input at a time with random (nonzero) weights.
    #[test]
    fn outputs_depend_only_on_earlier_inputs() {
        let mut r = rng::stream(1, 0);
        let order = [2, 0, 3, 1];
        for hidden in [vec![], vec![7], vec![9, 5]] {
            let mut made = Made::new(&order, &hidden, Activation::Tanh, &mut r);
            let mut p = vec![0.0; made.n_params()];
            rng::fill_normal(&mut r, &mut p);
            made.set_params(&p);
            let x = testing::random_batch(4, 1, &mut r);
            let base = made.forward(x.clone(), false).0;
            let pos = |c: usize| order.iter().position(|&o| o == c).unwrap();
            let mut connected = 0;
            for j in 0..4 {
                let mut xp = x.clone();
                xp[j] += 0.7;
                let out = made.forward(xp, false).0;
                for row in 0..8 {
                    let i = row % 4;
                    let moved = out[row] != base[row];
                    assert!(!(moved && pos(j) >= pos(i)), "output {row} sees input {j} ({hidden:?})");
                    connected += moved as usize;
                }
            }
            // Every allowed dependence exists: 6 earlier-later pairs, shift and log-scale each.
            assert_eq!(connected, 12, "{hidden:?}");
            assert!((0..made.n_params()).any(|k| !made.is_free(k)));
        }
    }
}
