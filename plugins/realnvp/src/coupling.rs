//! One affine coupling layer: `y_a = x_a * exp(s(x_f)) + t(x_f)`, `y_f = x_f`, with the
//! log-scale bounded as `s = bound * tanh(raw_s)` and `(raw_s, t)` given by a dense network of
//! the frozen coordinates `x_f`. `log|det| = sum_a s_a`. The conditioner and everything around
//! it is the shared [`Coupling`]; this file is the affine map.

use bootflow_core::{Batch, Error, Pass, Result, Rng};

use crate::mask::Split;
pub use bootflow_nn::coupling::Coupling;
use bootflow_nn::coupling::{CouplingKeys, CouplingTransform, Site};

/// The bounded affine map of the active coordinates.
#[derive(Clone, Debug)]
pub struct Affine {
    scale_bound: f64,
}

/// Affine coupling layer with a fixed bound on the log-scale.
pub type AffineCoupling = Coupling<Affine>;

/// What a pass keeps for its backward step. `e` is `exp(s)` after a forward pass and `exp(-s)`
/// after an inverse pass; `za` holds the active coordinates on the base side.
pub struct AffineRecord {
    tanh: Batch,
    e: Batch,
    za: Batch,
}

impl AffineRecord {
    /// `tanh(raw_s)` of every active coordinate of the pass.
    pub fn tanh(&self) -> &Batch {
        &self.tanh
    }
}

/// A coupling on `dim` coordinates split by `split`, conditioner as `keys` say, the log-scale
/// bounded by `scale_bound`. Weights of the hidden layers are drawn from `rng`; the last layer's
/// standard deviation is `init_scale / sqrt(fan_in)` (0 makes a fresh coupling the identity).
pub fn affine_coupling(
    dim: usize,
    split: Split,
    keys: &CouplingKeys,
    scale_bound: f64,
    init_scale: f64,
    rng: &mut Rng,
) -> Result<AffineCoupling> {
    if !(scale_bound > 0.0 && scale_bound.is_finite()) {
        return Err(Error::Config(format!("scale_bound must be positive and finite, got {scale_bound}")));
    }
    if !(init_scale >= 0.0 && init_scale.is_finite()) {
        return Err(Error::Config(format!("init_scale must be >= 0 and finite, got {init_scale}")));
    }
    Coupling::new(dim, split, keys, init_scale, Affine { scale_bound }, rng)
}

impl CouplingTransform for Affine {
    type Record = AffineRecord;
    const NAME: &'static str = "coupling";

    /// `raw_s` then `t`: rows `0..da` and `da..2 da` of each conditioner column.
    fn outputs_per_coordinate(&self) -> usize {
        2
    }

    fn raw_row(&self, active: usize, i: usize, c: usize) -> usize {
        c * active + i
    }

    /// Forward: `y = z e^s + t`; inverse: `z = (y - t) e^-s`.
    fn apply(&self, at: Site<'_>, raw: Batch, pass: &mut Pass) -> Option<AffineRecord> {
        let (Site { direction, active, record }, out) = (at, &mut pass.out);
        let (d, n, da) = (out.nrows(), out.ncols(), active.len());
        let (mut tanh, mut e, mut za) = if record {
            (Batch::zeros(da, n), Batch::zeros(da, n), Batch::zeros(da, n))
        } else {
            (Batch::zeros(0, 0), Batch::zeros(0, 0), Batch::zeros(0, 0))
        };
        let inverse = direction.is_inverse();
        let sign = direction.sign();
        for (j, ld) in pass.log_det.iter_mut().enumerate() {
            let rc = &raw.as_slice()[j * 2 * da..(j + 1) * 2 * da];
            let col = &mut out.as_mut_slice()[j * d..(j + 1) * d];
            for (i, &row) in active.iter().enumerate() {
                let th = rc[i].tanh();
                let s = self.scale_bound * th;
                let ex = (sign * s).exp();
                let v = col[row];
                let result = if inverse { (v - rc[da + i]) * ex } else { v * ex + rc[da + i] };
                col[row] = result;
                *ld += sign * s;
                if record {
                    let k = j * da + i;
                    tanh.as_mut_slice()[k] = th;
                    e.as_mut_slice()[k] = ex;
                    za.as_mut_slice()[k] = if inverse { result } else { v };
                }
            }
        }
        record.then_some(AffineRecord { tanh, e, za })
    }

    /// Forward: `g_z = g_y e^s`, `g_s = g_y z e^s + g_ld`, `g_t = g_y`.
    /// Inverse: `g_y = g_z e^-s`, `g_s = -g_z z - g_ld`, `g_t = -g_z e^-s`.
    /// Then `g_raw_s = g_s * bound * (1 - tanh^2)`.
    fn backward(&self, at: Site<'_>, rec: &AffineRecord, g_log_det: &[f64], g_in: &mut Batch, g_raw: &mut Batch) {
        let (d, active) = (g_in.nrows(), at.active);
        let (da, inverse) = (active.len(), at.direction.is_inverse());
        for (j, &g_ld) in g_log_det.iter().enumerate() {
            let col = &mut g_in.as_mut_slice()[j * d..(j + 1) * d];
            let gr = &mut g_raw.as_mut_slice()[j * 2 * da..(j + 1) * 2 * da];
            for (i, &row) in active.iter().enumerate() {
                let k = j * da + i;
                let (th, ex, z) = (rec.tanh.as_slice()[k], rec.e.as_slice()[k], rec.za.as_slice()[k]);
                let g = col[row];
                let (g_s, g_t) = if inverse { (-g * z - g_ld, -g * ex) } else { (g * z * ex + g_ld, g) };
                col[row] = g * ex;
                gr[i] = g_s * self.scale_bound * (1.0 - th * th);
                gr[da + i] = g_t;
            }
        }
    }

    /// Either way the score is divided by the recorded `e`; the raw cotangent is that of
    /// [`backward`](CouplingTransform::backward) with the new score and `g_ld = 1`.
    fn apply_with_score(
        &self,
        at: Site<'_>,
        raw: Batch,
        pass: &mut Pass,
        g_in: &mut Batch,
        g_raw: &mut Batch,
    ) -> Option<AffineRecord> {
        let rec = self.apply(at, raw, pass)?;
        let (d, active) = (g_in.nrows(), at.active);
        let (da, sign) = (active.len(), at.direction.sign());
        for (j, col) in g_in.as_mut_slice().chunks_exact_mut(d).enumerate() {
            let gr = &mut g_raw.as_mut_slice()[j * 2 * da..(j + 1) * 2 * da];
            for (i, &row) in active.iter().enumerate() {
                let k = j * da + i;
                let (th, ex, z) = (rec.tanh.as_slice()[k], rec.e.as_slice()[k], rec.za.as_slice()[k]);
                let s = col[row] / ex;
                col[row] = s;
                // Forward: g_s = s z e^s + 1, g_t = s; inverse: g_s = -s z - 1, g_t = -s e^-s.
                let (g_s, g_t) = if sign < 0.0 { (-s * z - 1.0, -s * ex) } else { (s * z * ex + 1.0, s) };
                gr[i] = g_s * self.scale_bound * (1.0 - th * th);
                gr[da + i] = g_t;
            }
        }
        Some(rec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activation::Activation;
    use crate::mask::{MaskKind, splits};
    use crate::precision::Precision;
    use bootflow_core::{Bijection, Cotangent, Direction, Tape, rng, testing};

    /// Parameter scale of the random layers: large enough that |tanh(raw_s)| reaches well into
    /// the curved part of tanh, small enough that it does not saturate (checked below). Wider
    /// inputs (more frozen coordinates) need smaller weights for the same raw_s.
    fn param_scale(dim: usize) -> f64 {
        match dim {
            0..=4 => 0.4,
            5..=32 => 0.3,
            _ => 0.15,
        }
    }

    /// Smallest |pre-activation| allowed at the checked points for ReLU: the finite-difference
    /// step 1e-5 moves pre-activations by about 1e-5 * (weight or input size, O(1)), so a margin
    /// of 1e-3 keeps every difference quotient on one side of the kink. ReLU checks draw again
    /// until their points satisfy this guard; the smooth activations need none.
    const RELU_MARGIN: f64 = 1e-3;

    /// Smallest |pre-activation| and largest |tanh(raw_s)| of a recorded pass.
    fn tape_extremes(layer: &AffineCoupling, tape: &Tape) -> (f64, f64) {
        let (net, rec) = layer.recorded(tape).expect("coupling tape");
        (layer.min_abs_pre_activation(net).unwrap(), rec.tanh().amax())
    }

    /// More columns than one 4-column panel of the packed products, so that the checks cover
    /// full and partial panels, as training does.
    const BATCH: usize = 7;

    /// Random parameters and points for `layer` in the regime the checks are about: the largest
    /// |tanh(raw_s)| between 0.3 and 0.99 (the bound is exercised, not saturated) and every
    /// pre-activation `margin` away from 0. Draws again otherwise, at most 100 times.
    fn draw_checkable(layer: &mut AffineCoupling, margin: f64, r: &mut Rng) -> Batch {
        let scale = param_scale(layer.dim());
        for _ in 0..100 {
            testing::randomise_params(layer, scale, r).unwrap();
            let z = testing::random_batch(layer.dim(), BATCH, r);
            let fwd = layer.forward(&z, true).unwrap();
            let inv = layer.inverse(&fwd.out, true).unwrap();
            let (a, b) = (fwd.tape.as_ref().unwrap(), inv.tape.as_ref().unwrap());
            let ((pre_f, tanh_f), (pre_i, tanh_i)) = (tape_extremes(layer, a), tape_extremes(layer, b));
            let max_tanh = tanh_f.max(tanh_i);
            if pre_f.min(pre_i) > margin && max_tanh > 0.3 && max_tanh < 0.99 {
                return z;
            }
        }
        panic!("no draw in the checked regime");
    }

    fn check(kind: MaskKind, dim: usize, lattice: Option<usize>, act: Activation, seed: u64) {
        let mut r = rng::stream(seed, 0);
        let margin = if act == Activation::Relu { RELU_MARGIN } else { 0.0 };
        for split in splits(kind, dim, lattice, 2, seed).unwrap() {
            let mut layer = affine_coupling(dim, split, &CouplingKeys::dense(&[10, 7], act), 2.0, 0.0, &mut r).unwrap();
            let z = draw_checkable(&mut layer, margin, &mut r);
            let rep = testing::check_bijection(&mut layer, &z, 1e-6, 1e-10)
                .unwrap_or_else(|e| panic!("{kind:?} dim {dim} {act:?}: {e}"));
            assert!(rep.forward_params > 0.0 && rep.inverse_input > 0.0, "nothing measured: {rep:?}");
        }
    }

    #[test]
    fn dim2_halves() {
        check(MaskKind::Halves, 2, None, Activation::Tanh, 1);
        check(MaskKind::Halves, 2, None, Activation::Relu, 2);
    }

    #[test]
    fn dim16_halves_and_random() {
        for (kind, seed) in [(MaskKind::Halves, 3), (MaskKind::Random, 4)] {
            check(kind, 16, None, Activation::Tanh, seed);
            check(kind, 16, None, Activation::Relu, seed + 10);
        }
    }

    #[test]
    fn dim2_random() {
        check(MaskKind::Random, 2, None, Activation::Tanh, 5);
    }

    #[test]
    fn checkerboard_8x8() {
        check(MaskKind::Checkerboard, 64, Some(8), Activation::Tanh, 6);
        check(MaskKind::Checkerboard, 64, Some(8), Activation::Relu, 7);
    }

    #[test]
    fn other_activations() {
        for (act, seed) in [(Activation::LeakyRelu, 8), (Activation::Elu, 9), (Activation::Silu, 10)] {
            check(MaskKind::Halves, 16, None, act, seed);
        }
    }

    /// Largest element-wise difference of `a` and `b` relative to the largest |b|.
    fn scaled_gap(a: &[f64], b: &[f64]) -> f64 {
        let scale = b.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        a.iter().zip(b).fold(0.0f64, |m, (x, y)| m.max((x - y).abs())) / scale
    }

    /// Mixed precision changes only the conditioner's rounding: outputs, log-determinants and
    /// cotangents agree with the f64 layer to a few hundred f32 ulps (unit round-off 6e-8,
    /// conditioner sums of up to 64 terms), so 1e-5 relative to the largest entry; a wrong
    /// term would move entries by O(1). The gap must also be nonzero: the f32 path really ran.
    #[test]
    fn mixed_precision_matches_f64_and_inverts_exactly() {
        let mut r = rng::stream(31, 0);
        for (kind, dim, lattice, act) in [
            (MaskKind::Halves, 2, None, Activation::Tanh),
            (MaskKind::Random, 16, None, Activation::Relu),
            (MaskKind::Checkerboard, 64, Some(8), Activation::Silu),
        ] {
            for split in splits(kind, dim, lattice, 2, 31).unwrap() {
                let mut layer =
                    affine_coupling(dim, split, &CouplingKeys::dense(&[64, 64], act), 2.0, 0.0, &mut r).unwrap();
                let mut mixed = layer.clone().with_precision(Precision::Mixed);
                testing::randomise_params(&mut layer, param_scale(dim), &mut r).unwrap();
                mixed.set_params(&layer.params()).unwrap();
                let z = testing::random_batch(dim, 37, &mut r);
                let g = testing::random_batch(dim, 37, &mut r);
                let g_ld: Vec<f64> = (0..37).map(|i| 0.1 * i as f64 - 1.5).collect();
                let ctx = format!("{kind:?} dim {dim} {act:?}");
                for direction in Direction::BOTH {
                    let run = |l: &AffineCoupling| {
                        let pass = l.pass(direction, &z, true).unwrap();
                        let mut gp = vec![0.0; l.n_params()];
                        let tape = pass.tape.as_ref().unwrap();
                        let gx = l.vjp(direction, tape, Cotangent::new(&g, &g_ld, Some(&mut gp)));
                        (pass.out, pass.log_det, gx.unwrap(), gp)
                    };
                    let (a, b) = (run(&mixed), run(&layer));
                    for (name, x, y) in [
                        ("output", a.0.as_slice(), b.0.as_slice()),
                        ("log-det", &a.1[..], &b.1[..]),
                        ("input cotangent", a.2.as_slice(), b.2.as_slice()),
                        ("parameter cotangent", &a.3[..], &b.3[..]),
                    ] {
                        let gap = scaled_gap(x, y);
                        assert!(gap < 1e-5 && gap > 0.0, "{ctx} {direction:?} {name}: {gap}");
                    }
                }
                // Both directions evaluate the conditioner on the same (unchanged) frozen rows,
                // so the round trip is exact up to f64 rounding of the affine map itself.
                let fwd = mixed.forward(&z, false).unwrap();
                let back = mixed.inverse(&fwd.out, false).unwrap();
                assert!(scaled_gap(back.out.as_slice(), z.as_slice()) < 1e-14, "{ctx} round trip");
                assert!(fwd.log_det.iter().zip(&back.log_det).all(|(a, b)| (a + b).abs() < 1e-12), "{ctx}");
            }
        }
    }

    #[test]
    fn fresh_coupling_is_the_identity_and_frozen_rows_pass_through() {
        let mut r = rng::stream(12, 0);
        let split = splits(MaskKind::Halves, 6, None, 1, 0).unwrap().remove(0);
        let mut layer =
            affine_coupling(6, split, &CouplingKeys::dense(&[8], Activation::Relu), 2.0, 0.0, &mut r).unwrap();
        let z = testing::random_batch(6, 4, &mut r);
        let p = layer.forward(&z, false).unwrap();
        assert_eq!(p.out, z);
        assert!(p.log_det.iter().all(|v| *v == 0.0));
        testing::randomise_params(&mut layer, 0.5, &mut r).unwrap();
        let p = layer.forward(&z, false).unwrap();
        assert_eq!(p.out.rows(0, 3), z.rows(0, 3));
        assert_ne!(p.out.rows(3, 3), z.rows(3, 3));
    }

    #[test]
    fn log_scale_stays_bounded_for_huge_parameters() {
        let mut r = rng::stream(13, 0);
        let split = splits(MaskKind::Halves, 4, None, 1, 0).unwrap().remove(0);
        let mut layer =
            affine_coupling(4, split, &CouplingKeys::dense(&[8], Activation::Tanh), 1.5, 0.0, &mut r).unwrap();
        testing::randomise_params(&mut layer, 1e3, &mut r).unwrap();
        let z = testing::random_batch(4, 20, &mut r);
        let p = layer.forward(&z, false).unwrap();
        // Two active coordinates, each |s| <= 1.5.
        assert!(p.log_det.iter().all(|v| v.abs() <= 3.0 + 1e-12));
        assert!(p.out.iter().all(|v| v.is_finite()));
    }

    #[test]
    fn rejects_foreign_and_mismatched_tapes() {
        let mut r = rng::stream(14, 0);
        let split = splits(MaskKind::Halves, 4, None, 1, 0).unwrap().remove(0);
        let layer = affine_coupling(4, split, &CouplingKeys::dense(&[8], Activation::Tanh), 2.0, 0.0, &mut r).unwrap();
        let z = testing::random_batch(4, 3, &mut r);
        let t = layer.forward(&z, true).unwrap().tape.unwrap();
        assert!(layer.vjp(Direction::Inverse, &t, Cotangent::new(&z, &[0.0; 3], None)).is_err());
        assert!(layer.vjp(Direction::Forward, &Tape::new(1u8), Cotangent::new(&z, &[0.0; 3], None)).is_err());
        assert!(layer.vjp(Direction::Forward, &t, Cotangent::new(&z, &[0.0; 2], None)).is_err());
        assert!(layer.forward(&testing::random_batch(3, 2, &mut r), false).is_err());
        // An empty batch is legal.
        let empty = Batch::zeros(4, 0);
        let t = layer.forward(&empty, true).unwrap().tape.unwrap();
        let mut gp = vec![0.0; layer.n_params()];
        assert_eq!(
            layer.vjp(Direction::Forward, &t, Cotangent::new(&empty, &[], Some(&mut gp))).unwrap().shape(),
            (4, 0)
        );
    }
}
