//! Rational-quadratic spline coupling (Durkan et al. 2019): the active coordinates go through
//! one monotone spline each (see [`crate::rqs`]), whose `3K - 1` parameters come from a dense
//! network of the frozen coordinates. `log|det| = sum_a log f'_a(x_a)`.

use bootflow_core::error::check_dim;
use bootflow_core::{Batch, Bijection, Error, Pass, Result, Rng, Tape};
use bootflow_nn::Activation;
use bootflow_nn::mask::Split;
use bootflow_nn::mlp::{Mlp, MlpTape};

use crate::rqs::{Knots, X};

/// One spline coupling layer.
#[derive(Clone, Debug)]
pub struct SplineCoupling {
    dim: usize,
    split: Split,
    bins: usize,
    bound: f64,
    net: Mlp,
}

/// Conditioner output and tape, and the active coordinates on the base side.
struct SplineTape {
    inverse: bool,
    net: MlpTape,
    raw: Batch,
    za: Batch,
}

fn gather(b: &Batch, rows: &[usize]) -> Batch {
    let mut out = Batch::zeros(rows.len(), b.ncols());
    for (o, c) in out.as_mut_slice().chunks_exact_mut(rows.len()).zip(b.as_slice().chunks_exact(b.nrows())) {
        o.iter_mut().zip(rows).for_each(|(v, &i)| *v = c[i]);
    }
    out
}

impl SplineCoupling {
    /// A coupling with `bins` bins on `[-bound, bound]`; last layer zero (identity start).
    pub fn new(
        dim: usize,
        split: Split,
        bins: usize,
        bound: f64,
        hidden: &[usize],
        activation: Activation,
        rng: &mut Rng,
    ) -> Result<Self> {
        if split.frozen.is_empty() || split.active.is_empty() || split.frozen.len() + split.active.len() != dim {
            return Err(Error::Config(format!("coupling split {split:?} is not a partition of {dim} coordinates")));
        }
        if bins < 2 {
            return Err(Error::Config(format!("bins must be at least 2, got {bins}")));
        }
        if !(bound > 0.0 && bound.is_finite()) {
            return Err(Error::Config(format!("bound must be positive and finite, got {bound}")));
        }
        if hidden.contains(&0) {
            return Err(Error::Config("hidden widths must be positive".into()));
        }
        let mut widths = vec![split.frozen.len()];
        widths.extend_from_slice(hidden);
        widths.push(split.active.len() * (3 * bins - 1));
        let net = Mlp::new(&widths, activation, 0.0, rng);
        Ok(Self { dim, split, bins, bound, net })
    }

    fn per(&self) -> usize {
        3 * self.bins - 1
    }

    fn pass(&self, input: &Batch, record: bool, inverse: bool) -> Result<Pass> {
        check_dim("spline coupling input rows", input.nrows(), self.dim)?;
        let (d, n, per) = (self.dim, input.ncols(), self.per());
        let da = self.split.active.len();
        let (raw, net) = self.net.forward(gather(input, &self.split.frozen), record);
        let mut out = input.clone();
        let mut log_det = vec![0.0; n];
        let mut za = if record { Batch::zeros(da, n) } else { Batch::zeros(0, 0) };
        let mut knots = Knots::default();
        for (j, ld) in log_det.iter_mut().enumerate() {
            let col = &mut out.as_mut_slice()[j * d..(j + 1) * d];
            for (i, &row) in self.split.active.iter().enumerate() {
                let r = &raw.as_slice()[(j * da + i) * per..(j * da + i + 1) * per];
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
            }
        }
        let tape = net.map(|net| Tape::new(SplineTape { inverse, net, raw, za }));
        Ok(Pass { out, log_det, tape })
    }

    /// Forward (`x = f(z)`, `ld = log f'(z)`): `g_z = g_x f' + g_ld (log f')_z`, knots likewise.
    /// Inverse (`z = f^-1(x)`, `ld = -log f'(z)`): with `u = g_z - g_ld (log f')_z`,
    /// `g_x = u / f'` and the knot cotangent is `-u f_p / f' - g_ld (log f')_p`.
    fn vjp(
        &self,
        tape: &Tape,
        g_out: &Batch,
        g_log_det: &[f64],
        g_params: Option<&mut [f64]>,
        inverse: bool,
    ) -> Result<Batch> {
        let t = tape.get::<SplineTape>().ok_or_else(|| Error::Other("spline coupling given a foreign tape".into()))?;
        if t.inverse != inverse {
            return Err(Error::Other("spline coupling tape recorded in the other direction".into()));
        }
        let n = t.za.ncols();
        check_dim("spline coupling cotangent rows", g_out.nrows(), self.dim)?;
        check_dim("spline coupling cotangent columns", g_out.ncols(), n)?;
        check_dim("spline coupling log-det cotangent length", g_log_det.len(), n)?;
        if let Some(gp) = g_params.as_deref() {
            check_dim("spline coupling parameter cotangent length", gp.len(), self.n_params())?;
        }
        let (d, da, per) = (self.dim, self.split.active.len(), self.per());
        let mut g_in = g_out.clone();
        let mut g_raw = Batch::zeros(da * per, n);
        let mut knots = Knots::default();
        for (j, &g_ld) in g_log_det.iter().enumerate() {
            for (i, &row) in self.split.active.iter().enumerate() {
                let k = j * da + i;
                let r = &t.raw.as_slice()[k * per..(k + 1) * per];
                knots.set(r, self.bins, self.bound);
                let l = knots.eval(t.za[(i, j)]);
                let g = g_out[(row, j)];
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
        let g_frozen = self.net.backward(&t.net, g_raw, g_params);
        let df = self.split.frozen.len();
        for (col, gf) in g_in.as_mut_slice().chunks_exact_mut(d).zip(g_frozen.as_slice().chunks_exact(df)) {
            self.split.frozen.iter().zip(gf).for_each(|(&row, v)| col[row] += v);
        }
        Ok(g_in)
    }
}

#[cfg(test)]
impl SplineCoupling {
    /// Smallest distance of an active coordinate of `z` (base side) to a knot of its spline,
    /// `-bound` and `bound` included: where the second derivative jumps.
    pub(crate) fn knot_margin(&self, z: &Batch) -> f64 {
        let (da, per) = (self.split.active.len(), self.per());
        let raw = self.net.forward(gather(z, &self.split.frozen), false).0;
        let mut knots = Knots::default();
        let mut m = f64::INFINITY;
        for j in 0..z.ncols() {
            for (i, &row) in self.split.active.iter().enumerate() {
                knots.set(&raw.as_slice()[(j * da + i) * per..(j * da + i + 1) * per], self.bins, self.bound);
                m = knots.xs.iter().fold(m, |m, q| m.min((q - z[(row, j)]).abs()));
            }
        }
        m
    }
}

impl Bijection for SplineCoupling {
    fn dim(&self) -> usize {
        self.dim
    }

    fn n_params(&self) -> usize {
        self.net.n_params()
    }

    fn params(&self) -> Vec<f64> {
        self.net.params().to_vec()
    }

    fn set_params(&mut self, params: &[f64]) -> Result<()> {
        check_dim("spline coupling parameters", params.len(), self.n_params())?;
        self.net.set_params(params);
        Ok(())
    }

    fn forward(&self, z: &Batch, record: bool) -> Result<Pass> {
        self.pass(z, record, false)
    }

    fn inverse(&self, x: &Batch, record: bool) -> Result<Pass> {
        self.pass(x, record, true)
    }

    fn forward_vjp(
        &self,
        tape: &Tape,
        g_out: &Batch,
        g_log_det: &[f64],
        g_params: Option<&mut [f64]>,
    ) -> Result<Batch> {
        self.vjp(tape, g_out, g_log_det, g_params, false)
    }

    fn inverse_vjp(
        &self,
        tape: &Tape,
        g_out: &Batch,
        g_log_det: &[f64],
        g_params: Option<&mut [f64]>,
    ) -> Result<Batch> {
        self.vjp(tape, g_out, g_log_det, g_params, true)
    }
}
