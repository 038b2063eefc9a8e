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

    /// The layer of the `affine` config: optional initial `scale` (positive) and `shift`, each
    /// one number for every coordinate or a list of `dim`; the identity when absent. A wide
    /// initial scale plays the part of a data-initialised ActNorm: the layers before it see
    /// standardised coordinates while the flow covers the target's range.
    pub fn from_config(dim: usize, cfg: &serde_json::Value) -> Result<Self> {
        let c: AffineConfig = crate::registry::parse_config("affine layer", cfg)?;
        let expand = |what: &str, v: Option<Init>, default: f64| -> Result<Vec<f64>> {
            let v = match v {
                None => vec![default; dim],
                Some(Init::Scalar(x)) => vec![x; dim],
                Some(Init::List(l)) => {
                    check_dim(&format!("affine layer {what} entries"), l.len(), dim)?;
                    l
                }
            };
            match v.iter().find(|x| !x.is_finite()) {
                Some(x) => Err(crate::Error::Config(format!("affine layer: {what} {x} is not finite"))),
                None => Ok(v),
            }
        };
        let scale = expand("scale", c.scale, 1.0)?;
        if let Some(s) = scale.iter().find(|s| **s <= 0.0) {
            return Err(crate::Error::Config(format!("affine layer: scale {s} must be positive")));
        }
        Ok(Self::with(scale.iter().map(|s| s.ln()).collect(), expand("shift", c.shift, 0.0)?))
    }

    fn check(&self, b: &Batch) -> Result<()> {
        check_dim("affine layer input rows", b.nrows(), self.dim())
    }
}

/// One number for every coordinate, or a list.
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum Init {
    Scalar(f64),
    List(Vec<f64>),
}

/// Keys of the `affine` config.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct AffineConfig {
    scale: Option<Init>,
    shift: Option<Init>,
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

    #[test]
    fn config_sets_the_initial_scale_and_shift() {
        let layer =
            ElementwiseAffine::from_config(2, &serde_json::json!({ "scale": 8.0, "shift": [-1.0, -7.0] })).unwrap();
        let p = layer.forward(&Batch::from_column_slice(2, 1, &[1.0, 0.5]), false).unwrap();
        assert!((p.out[0] - 7.0).abs() < 1e-12 && (p.out[1] + 3.0).abs() < 1e-12, "{}", p.out);
        assert!((p.log_det[0] - 2.0 * 8f64.ln()).abs() < 1e-12);
        assert_eq!(ElementwiseAffine::from_config(2, &serde_json::Value::Null).unwrap().params(), vec![0.0; 4]);
        for bad in [
            serde_json::json!({ "scale": 0.0 }),
            serde_json::json!({ "scale": [1.0] }),
            serde_json::json!({ "shift": "x" }),
            serde_json::json!({ "width": 2 }),
        ] {
            assert!(ElementwiseAffine::from_config(2, &bad).is_err(), "{bad}");
        }
    }
}
