//! Element-wise affine layer `x = z * exp(s) + t` (ActNorm-style; with trainable `s`, `t` it also
//! makes a fixed standard-normal base into a trainable diagonal Gaussian).

use crate::Batch;
use crate::bijection::{Bijection, Pass, Tape};
use crate::error::{Result, check_dim};

/// `x_i = z_i * exp(s_i) + t_i`; parameters are `[s_1..s_d, t_1..t_d]`.
#[derive(Clone, Debug)]
pub struct ElementwiseAffine {
    log_scale: Vec<f64>,
    shift: Vec<f64>,
}

impl ElementwiseAffine {
    /// The identity layer on `dim` coordinates.
    pub fn new(dim: usize) -> Self {
        Self { log_scale: vec![0.0; dim], shift: vec![0.0; dim] }
    }

    /// A layer with given log-scales and shifts.
    pub fn with(log_scale: Vec<f64>, shift: Vec<f64>) -> Self {
        assert_eq!(log_scale.len(), shift.len());
        Self { log_scale, shift }
    }

    fn check(&self, b: &Batch) -> Result<()> {
        check_dim("affine layer input rows", b.nrows(), self.dim())
    }
}

/// The affine layer keeps its pass input.
struct Input(Batch);

impl Bijection for ElementwiseAffine {
    fn dim(&self) -> usize {
        self.shift.len()
    }

    fn n_params(&self) -> usize {
        2 * self.dim()
    }

    fn params(&self) -> Vec<f64> {
        [self.log_scale.as_slice(), self.shift.as_slice()].concat()
    }

    fn set_params(&mut self, params: &[f64]) -> Result<()> {
        check_dim("affine layer parameters", params.len(), self.n_params())?;
        let d = self.dim();
        self.log_scale.copy_from_slice(&params[..d]);
        self.shift.copy_from_slice(&params[d..]);
        Ok(())
    }

    fn forward(&self, z: &Batch, record: bool) -> Result<Pass> {
        self.check(z)?;
        let mut x = z.clone();
        for mut col in x.column_iter_mut() {
            for i in 0..col.len() {
                col[i] = col[i] * self.log_scale[i].exp() + self.shift[i];
            }
        }
        let ld: f64 = self.log_scale.iter().sum();
        Ok(Pass { out: x, log_det: vec![ld; z.ncols()], tape: record.then(|| Tape::new(Input(z.clone()))) })
    }

    fn inverse(&self, x: &Batch, record: bool) -> Result<Pass> {
        self.check(x)?;
        let mut z = x.clone();
        for mut col in z.column_iter_mut() {
            for i in 0..col.len() {
                col[i] = (col[i] - self.shift[i]) * (-self.log_scale[i]).exp();
            }
        }
        let ld: f64 = -self.log_scale.iter().sum::<f64>();
        Ok(Pass { out: z, log_det: vec![ld; x.ncols()], tape: record.then(|| Tape::new(Input(x.clone()))) })
    }

    fn forward_vjp(
        &self,
        tape: &Tape,
        g_out: &Batch,
        g_log_det: &[f64],
        g_params: Option<&mut [f64]>,
    ) -> Result<Batch> {
        let z = &tape.get::<Input>().expect("affine tape").0;
        let d = self.dim();
        let mut g_in = g_out.clone();
        for mut col in g_in.column_iter_mut() {
            for i in 0..d {
                col[i] *= self.log_scale[i].exp();
            }
        }
        if let Some(gp) = g_params {
            let g_ld_sum: f64 = g_log_det.iter().sum();
            for i in 0..d {
                let e = self.log_scale[i].exp();
                let (mut gs, mut gt) = (g_ld_sum, 0.0);
                for j in 0..z.ncols() {
                    gs += g_out[(i, j)] * z[(i, j)] * e;
                    gt += g_out[(i, j)];
                }
                gp[i] += gs;
                gp[d + i] += gt;
            }
        }
        Ok(g_in)
    }

    fn inverse_vjp(
        &self,
        tape: &Tape,
        g_out: &Batch,
        g_log_det: &[f64],
        g_params: Option<&mut [f64]>,
    ) -> Result<Batch> {
        let x = &tape.get::<Input>().expect("affine tape").0;
        let d = self.dim();
        let mut g_in = g_out.clone();
        for mut col in g_in.column_iter_mut() {
            for i in 0..d {
                col[i] *= (-self.log_scale[i]).exp();
            }
        }
        if let Some(gp) = g_params {
            let g_ld_sum: f64 = g_log_det.iter().sum();
            for i in 0..d {
                let e = (-self.log_scale[i]).exp();
                let (mut gs, mut gt) = (-g_ld_sum, 0.0);
                for j in 0..x.ncols() {
                    gs -= g_out[(i, j)] * (x[(i, j)] - self.shift[i]) * e;
                    gt -= g_out[(i, j)] * e;
                }
                gp[i] += gs;
                gp[d + i] += gt;
            }
        }
        Ok(g_in)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;

    #[test]
    fn gradients_and_round_trip() {
        let mut r = crate::rng::stream(1, 0);
        let mut layer = ElementwiseAffine::new(3);
        testing::randomise_params(&mut layer, 0.5, &mut r).unwrap();
        let z = testing::random_batch(3, 5, &mut r);
        testing::check_bijection(&mut layer, &z, 1e-6, 1e-10).unwrap();
    }
}
