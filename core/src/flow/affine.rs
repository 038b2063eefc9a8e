//! Element-wise affine layer `x = z * exp(s) + t` (ActNorm-style; with trainable `s`, `t` it also
//! makes a fixed standard-normal base into a trainable diagonal Gaussian).

use crate::Batch;
use crate::error::{Error, Result, check_dim};
use crate::model::bijection::{Bijection, Cotangent, Direction, Pass, Tape};

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

    fn load_params(&mut self, params: &[f64]) -> Result<()> {
        let d = self.dim();
        self.log_scale.copy_from_slice(&params[..d]);
        self.shift.copy_from_slice(&params[d..]);
        Ok(())
    }

    fn pass(&self, direction: Direction, input: &Batch, record: bool) -> Result<Pass> {
        self.check(input)?;
        let mut out = input.clone();
        for mut col in out.column_iter_mut() {
            for i in 0..col.len() {
                col[i] = match direction {
                    Direction::Forward => col[i] * self.log_scale[i].exp() + self.shift[i],
                    Direction::Inverse => (col[i] - self.shift[i]) * (-self.log_scale[i]).exp(),
                };
            }
        }
        let ld = match direction {
            Direction::Forward => self.log_scale.iter().sum(),
            Direction::Inverse => -self.log_scale.iter().sum::<f64>(),
        };
        let tape = record.then(|| Tape::new(Input(input.clone())));
        Ok(Pass { out, log_det: vec![ld; input.ncols()], tape })
    }

    /// A constant log-determinant: the score is only divided by the scale of the pass.
    fn pass_with_score(
        &self,
        direction: Direction,
        input: &Batch,
        score: &Batch,
        record: bool,
    ) -> Result<(Pass, Batch)> {
        check_dim("affine layer score rows", score.nrows(), self.dim())?;
        check_dim("affine layer score columns", score.ncols(), input.ncols())?;
        let pass = self.pass(direction, input, record)?;
        let sign = direction.sign();
        let mut s = score.clone();
        for mut col in s.column_iter_mut() {
            col.iter_mut().zip(&self.log_scale).for_each(|(v, l)| *v *= (-sign * l).exp());
        }
        Ok((pass, s))
    }

    /// Forward: `g_z = g_x e^s`, `g_s = g_ld + g_x z e^s`, `g_t = g_x`.
    /// Inverse: `g_x = g_z e^-s`, `g_s = -g_ld - g_z (x - t) e^-s`, `g_t = -g_z e^-s`.
    fn vjp(&self, direction: Direction, tape: &Tape, g: Cotangent<'_>) -> Result<Batch> {
        let input = &tape.get::<Input>().ok_or_else(|| Error::Other("affine layer given a foreign tape".into()))?.0;
        let d = self.dim();
        let inverse = direction.is_inverse();
        let scale = |i: usize| if inverse { (-self.log_scale[i]).exp() } else { self.log_scale[i].exp() };
        let mut g_in = g.out.clone();
        for mut col in g_in.column_iter_mut() {
            for i in 0..d {
                col[i] *= scale(i);
            }
        }
        if let Some(gp) = g.params {
            let g_ld_sum: f64 = g.log_det.iter().sum();
            for i in 0..d {
                let e = scale(i);
                let (mut gs, mut gt) = if inverse { (-g_ld_sum, 0.0) } else { (g_ld_sum, 0.0) };
                for j in 0..input.ncols() {
                    if inverse {
                        gs -= g.out[(i, j)] * (input[(i, j)] - self.shift[i]) * e;
                        gt -= g.out[(i, j)] * e;
                    } else {
                        gs += g.out[(i, j)] * input[(i, j)] * e;
                        gt += g.out[(i, j)];
                    }
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
