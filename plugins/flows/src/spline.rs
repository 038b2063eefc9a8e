//! Rational-quadratic spline coupling (Durkan et al. 2019): the active coordinates go through
//! one monotone spline each (see [`crate::rqs`]), whose `3K - 1` parameters come from a dense
//! network of the frozen coordinates. `log|det| = sum_a log f'_a(x_a)`. The conditioner and
//! everything around it is the shared [`Coupling`]; this file is the spline map.

use bootflow_core::{Batch, Error, Pass, Result, Rng};
use bootflow_nn::coupling::{Coupling, CouplingKeys, CouplingTransform, Site};
use bootflow_nn::mask::Split;

use crate::rqs::{Knots, X};

/// Monotone splines with `bins` bins on `[-bound, bound]`, identity outside.
#[derive(Clone, Debug)]
pub struct Spline {
    bins: usize,
    bound: f64,
}

/// One spline coupling layer.
pub type SplineCoupling = Coupling<Spline>;

/// Conditioner output and the active coordinates on the base side.
pub struct SplineRecord {
    raw: Batch,
    za: Batch,
}

/// A coupling with `bins` bins on `[-bound, bound]`; last layer zero (identity start).
pub fn spline_coupling(
    dim: usize,
    split: Split,
    bins: usize,
    bound: f64,
    keys: &CouplingKeys,
    rng: &mut Rng,
) -> Result<SplineCoupling> {
    if bins < 2 {
        return Err(Error::Config(format!("bins must be at least 2, got {bins}")));
    }
    if !(bound > 0.0 && bound.is_finite()) {
        return Err(Error::Config(format!("bound must be positive and finite, got {bound}")));
    }
    Coupling::new(dim, split, keys, 0.0, Spline { bins, bound }, rng)
}

impl CouplingTransform for Spline {
    type Record = SplineRecord;
    const NAME: &'static str = "spline coupling";

    fn outputs_per_coordinate(&self) -> usize {
        3 * self.bins - 1
    }

    fn raw_row(&self, _active: usize, i: usize, c: usize) -> usize {
        i * self.outputs_per_coordinate() + c
    }

    fn apply(&self, at: Site<'_>, raw: Batch, pass: &mut Pass) -> Option<SplineRecord> {
        self.map(at, raw, pass, None)
    }

    /// Forward: `s' = (s - (log f')_z) / f'`, knot cotangent `s' f_p + (log f')_p`.
    /// Inverse: `s' = f' s + (log f')_z`, knot cotangent `-s f_p - (log f')_p`.
    fn apply_with_score(
        &self,
        at: Site<'_>,
        raw: Batch,
        pass: &mut Pass,
        score: &mut Batch,
        g_raw: &mut Batch,
    ) -> Option<SplineRecord> {
        self.map(at, raw, pass, Some((score, g_raw)))
    }

    /// Forward (`x = f(z)`, `ld = log f'(z)`): `g_z = g_x f' + g_ld (log f')_z`, knots likewise.
    /// Inverse (`z = f^-1(x)`, `ld = -log f'(z)`): with `u = g_z - g_ld (log f')_z`,
    /// `g_x = u / f'` and the knot cotangent is `-u f_p / f' - g_ld (log f')_p`.
    fn backward(&self, at: Site<'_>, t: &SplineRecord, g_log_det: &[f64], g_in: &mut Batch, g_raw: &mut Batch) {
        let (active, per) = (at.active, self.outputs_per_coordinate());
        let (da, inverse) = (active.len(), at.direction.is_inverse());
        let mut knots = Knots::default();
        for (j, &g_ld) in g_log_det.iter().enumerate() {
            for (i, &row) in active.iter().enumerate() {
                let k = j * da + i;
                let r = &t.raw.as_slice()[k * per..(k + 1) * per];
                knots.set(r, self.bins, self.bound);
                let l = knots.eval(t.za[(i, j)]);
                let g = g_in[(row, j)];
                let mut g_knots = [0.0; 7];
                if inverse {
                    let df = l.log_df.exp();
                    let u = g - g_ld * l.grad_log_df[X];
                    g_in[(row, j)] = u / df;
                    for (o, (fp, lp)) in g_knots.iter_mut().zip(l.grad_f.iter().zip(&l.grad_log_df)) {
                        *o = -u * fp / df - g_ld * lp;
                    }
                } else {
                    g_in[(row, j)] = g * l.grad_f[X] + g_ld * l.grad_log_df[X];
                    for (o, (fp, lp)) in g_knots.iter_mut().zip(l.grad_f.iter().zip(&l.grad_log_df)) {
                        *o = g * fp + g_ld * lp;
                    }
                }
                if let Some(bin) = l.bin {
                    knots.backward(r, bin, &g_knots, &mut g_raw.as_mut_slice()[k * per..(k + 1) * per]);
                }
            }
        }
    }
}

impl Spline {
    /// The spline map of every active coordinate, and with `score` the fast path gradient's
    /// step at the same knots (see [`CouplingTransform::apply_with_score`]).
    fn map(
        &self,
        at: Site<'_>,
        raw: Batch,
        pass: &mut Pass,
        mut score: Option<(&mut Batch, &mut Batch)>,
    ) -> Option<SplineRecord> {
        let (Site { direction, active, record }, out) = (at, &mut pass.out);
        let (d, n, per) = (out.nrows(), out.ncols(), self.outputs_per_coordinate());
        let (da, inverse) = (active.len(), direction.is_inverse());
        let mut za = if record { Batch::zeros(da, n) } else { Batch::zeros(0, 0) };
        let mut knots = Knots::default();
        for (j, ld) in pass.log_det.iter_mut().enumerate() {
            let col = &mut out.as_mut_slice()[j * d..(j + 1) * d];
            for (i, &row) in active.iter().enumerate() {
                let k = j * da + i;
                let r = &raw.as_slice()[k * per..(k + 1) * per];
                knots.set(r, self.bins, self.bound);
                let z = if inverse { knots.invert(col[row]) } else { col[row] };
                let l = knots.eval(z);
                if inverse {
                    col[row] = z;
                    *ld -= l.log_df;
                } else {
                    col[row] = l.f;
                    *ld += l.log_df;
                }
                if record {
                    za[(i, j)] = z;
                }
                let Some((s, g_raw)) = score.as_mut() else { continue };
                let (s_in, df) = (s[(row, j)], l.log_df.exp());
                let mut g_knots = [0.0; 7];
                if inverse {
                    s[(row, j)] = df * s_in + l.grad_log_df[X];
                    for (o, (fp, lp)) in g_knots.iter_mut().zip(l.grad_f.iter().zip(&l.grad_log_df)) {
                        *o = -s_in * fp - lp;
                    }
                } else {
                    let s_out = (s_in - l.grad_log_df[X]) / df;
                    s[(row, j)] = s_out;
                    for (o, (fp, lp)) in g_knots.iter_mut().zip(l.grad_f.iter().zip(&l.grad_log_df)) {
                        *o = s_out * fp + lp;
                    }
                }
                if let Some(bin) = l.bin {
                    knots.backward(r, bin, &g_knots, &mut g_raw.as_mut_slice()[k * per..(k + 1) * per]);
                }
            }
        }
        record.then_some(SplineRecord { raw, za })
    }
}

/// Smallest distance of an active coordinate of `z` (base side) to a knot of its spline,
/// `-bound` and `bound` included: where the second derivative jumps.
#[cfg(test)]
pub(crate) fn knot_margin(layer: &SplineCoupling, z: &Batch) -> f64 {
    let (s, active) = (layer.transform(), &layer.split().active);
    let (da, per) = (active.len(), s.outputs_per_coordinate());
    let raw = layer.conditioner(z);
    let mut knots = Knots::default();
    let mut m = f64::INFINITY;
    for j in 0..z.ncols() {
        for (i, &row) in active.iter().enumerate() {
            knots.set(&raw.as_slice()[(j * da + i) * per..(j * da + i + 1) * per], s.bins, s.bound);
            m = knots.xs.iter().fold(m, |m, q| m.min((q - z[(row, j)]).abs()));
        }
    }
    m
}
