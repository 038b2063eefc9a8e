//! Full affine layer `x = L z + t` with `L` lower triangular and a positive diagonal: a Gaussian's
//! Cholesky factor and mean, so a standard-normal input comes out `N(t, L L^T)`. `flow.init`
//! puts one at the data end of a flow, at the target's scale and correlations, and trains it
//! with the rest. Parameters are the log-diagonal `ln L_ii`, the strictly lower entries `L_ij`
//! (row by row) and `t`.

use crate::Batch;
use crate::error::{Error, Result, check_dim};
use crate::model::bijection::{Bijection, Cotangent, Direction, Pass, Tape};

/// `x = L z + t`.
#[derive(Clone, Debug)]
pub struct CholeskyAffine {
    /// `L`, `dim x dim`, zero above the diagonal.
    lower: Batch,
    shift: Vec<f64>,
}

/// Keys of the `cholesky` layer config.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CholeskyConfig {
    /// `t` (zeros when absent).
    shift: Option<Vec<f64>>,
    /// The rows of `L` (row `i` has `i + 1` entries, or `dim` with zeros above the diagonal);
    /// the identity when absent.
    lower: Option<Vec<Vec<f64>>>,
}

impl CholeskyAffine {
    /// `x = L z + t`; fails unless `L` is square, lower triangular, finite, with a positive diagonal.
    pub fn new(lower: Batch, shift: Vec<f64>) -> Result<Self> {
        let d = shift.len();
        check_dim("cholesky layer rows of L", lower.nrows(), d)?;
        check_dim("cholesky layer columns of L", lower.ncols(), d)?;
        for i in 0..d {
            if !(lower[(i, i)] > 0.0 && lower[(i, i)].is_finite()) {
                return Err(Error::Config(format!("cholesky layer: L[{i}][{i}] = {} must be positive", lower[(i, i)])));
            }
            for j in 0..d {
                let v = lower[(i, j)];
                if !v.is_finite() || (j > i && v != 0.0) {
                    return Err(Error::Config(format!(
                        "cholesky layer: L[{i}][{j}] = {v} (L must be finite and zero above the diagonal)"
                    )));
                }
            }
        }
        if let Some(t) = shift.iter().find(|t| !t.is_finite()) {
            return Err(Error::Config(format!("cholesky layer: shift {t} is not finite")));
        }
        Ok(Self { lower, shift })
    }

    /// The layer of the `cholesky` config: keys `shift`, `lower`, and `note`, a string saying
    /// where the values came from (`flow.init` writes one), which the layer does not read.
    pub fn from_config(dim: usize, cfg: &serde_json::Value) -> Result<Self> {
        let mut cfg = cfg.clone();
        if let Some(m) = cfg.as_object_mut()
            && m.get("note").is_some_and(serde_json::Value::is_string)
        {
            m.remove("note");
        }
        let c: CholeskyConfig = crate::registry::parse_config("cholesky layer", &cfg)?;
        let shift = c.shift.unwrap_or_else(|| vec![0.0; dim]);
        check_dim("cholesky layer shift entries", shift.len(), dim)?;
        let mut lower = Batch::identity(dim, dim);
        if let Some(rows) = c.lower {
            check_dim("cholesky layer rows of lower", rows.len(), dim)?;
            for (i, row) in rows.iter().enumerate() {
                if row.len() != i + 1 && row.len() != dim {
                    return Err(Error::Config(format!(
                        "cholesky layer: lower[{i}] has {} entries, expected {} or {dim}",
                        row.len(),
                        i + 1
                    )));
                }
                for (j, v) in row.iter().enumerate() {
                    lower[(i, j)] = *v;
                }
            }
        }
        Self::new(lower, shift)
    }

    /// The config that rebuilds this layer, with `note` saying where it came from.
    pub fn to_config(&self, note: &str) -> serde_json::Value {
        let rows: Vec<Vec<f64>> = (0..self.dim()).map(|i| (0..=i).map(|j| self.lower[(i, j)]).collect()).collect();
        serde_json::json!({ "type": "cholesky", "shift": self.shift, "lower": rows, "note": note })
    }

    fn log_det(&self) -> f64 {
        self.lower.diagonal().iter().map(|v| v.ln()).sum()
    }
}

/// The layer keeps the `z` side of its pass (input forward, output inverse).
struct ZSide(Batch);

impl Bijection for CholeskyAffine {
    fn dim(&self) -> usize {
        self.shift.len()
    }

    fn n_params(&self) -> usize {
        let d = self.dim();
        d + d * (d - 1) / 2 + d
    }

    fn params(&self) -> Vec<f64> {
        let d = self.dim();
        let mut p: Vec<f64> = self.lower.diagonal().iter().map(|v| v.ln()).collect();
        for i in 0..d {
            p.extend((0..i).map(|j| self.lower[(i, j)]));
        }
        p.extend(&self.shift);
        p
    }

    fn load_params(&mut self, params: &[f64]) -> Result<()> {
        let d = self.dim();
        let mut k = d;
        for i in 0..d {
            self.lower[(i, i)] = params[i].exp();
            for j in 0..i {
                self.lower[(i, j)] = params[k];
                k += 1;
            }
        }
        self.shift.copy_from_slice(&params[k..]);
        Ok(())
    }

    fn pass(&self, direction: Direction, input: &Batch, record: bool) -> Result<Pass> {
        check_dim("cholesky layer input rows", input.nrows(), self.dim())?;
        let n = input.ncols();
        let (out, z) = match direction {
            Direction::Forward => {
                let mut x = &self.lower * input;
                for mut c in x.column_iter_mut() {
                    c.iter_mut().zip(&self.shift).for_each(|(v, t)| *v += t);
                }
                (x, input)
            }
            Direction::Inverse => {
                let mut z = input.clone();
                for mut c in z.column_iter_mut() {
                    c.iter_mut().zip(&self.shift).for_each(|(v, t)| *v -= t);
                }
                if !self.lower.solve_lower_triangular_mut(&mut z) {
                    return Err(Error::Bug("the cholesky layer's L is singular".into()));
                }
                let tape = record.then(|| Tape::new(ZSide(z.clone())));
                return Ok(Pass { out: z, log_det: vec![-self.log_det(); n], tape });
            }
        };
        let tape = record.then(|| Tape::new(ZSide(z.clone())));
        Ok(Pass { out, log_det: vec![self.log_det(); n], tape })
    }

    /// Forward (`x = L z + t`): `g_z = L^T g_x`, `g_L = g_x z^T` (lower part), `g_t = sum g_x`,
    /// and the log-det adds `sum g_ld` to each `g_{ln L_ii}`. Inverse (`z = L^-1 (x - t)`):
    /// `g_x = L^-T g_z`, `g_L = -g_x z^T`, `g_t = -sum g_x`, the log-det term with a minus.
    /// The parameter `ln L_ii` gets `g_{L_ii} L_ii`.
    fn vjp(&self, direction: Direction, tape: &Tape, g: Cotangent<'_>) -> Result<Batch> {
        let z = &tape.get::<ZSide>().ok_or_else(|| Error::Other("cholesky layer given a foreign tape".into()))?.0;
        let d = self.dim();
        let inverse = direction.is_inverse();
        let g_in = if inverse {
            let mut v = g.out.clone();
            if !self.lower.tr_solve_lower_triangular_mut(&mut v) {
                return Err(Error::Bug("the cholesky layer's L is singular".into()));
            }
            v
        } else {
            self.lower.tr_mul(g.out)
        };
        if let Some(gp) = g.params {
            // The x-side cotangent: g_x forward, L^-T g_z (= g_in) inverse.
            let (gx, sign) = if inverse { (&g_in, -1.0) } else { (g.out, 1.0) };
            let outer = gx * z.transpose();
            let g_ld: f64 = g.log_det.iter().sum();
            let mut k = d;
            for i in 0..d {
                gp[i] += sign * (g_ld + outer[(i, i)] * self.lower[(i, i)]);
                for j in 0..i {
                    gp[k] += sign * outer[(i, j)];
                    k += 1;
                }
            }
            for (i, c) in gx.row_iter().enumerate() {
                gp[k + i] += sign * c.sum();
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
        let mut r = crate::rng::stream(2, 0);
        let mut layer = CholeskyAffine::from_config(4, &serde_json::Value::Null).unwrap();
        assert_eq!(layer.n_params(), 4 + 6 + 4);
        testing::randomise_params(&mut layer, 0.5, &mut r).unwrap();
        let z = testing::random_batch(4, 6, &mut r);
        testing::check_bijection(&mut layer, &z, 1e-6, 1e-10).unwrap();
    }

    #[test]
    fn pushes_a_standard_normal_to_the_gaussian_of_its_factor() {
        let cfg = serde_json::json!({ "shift": [1.0, -2.0], "lower": [[2.0], [0.5, 3.0]], "note": "test" });
        let layer = CholeskyAffine::from_config(2, &cfg).unwrap();
        let p = layer.forward(&Batch::from_column_slice(2, 1, &[1.0, 1.0]), false).unwrap();
        assert!((p.out[0] - 3.0).abs() < 1e-15 && (p.out[1] - 1.5).abs() < 1e-15, "{}", p.out);
        assert!((p.log_det[0] - 6f64.ln()).abs() < 1e-15);
        let mut written = layer.to_config("test");
        assert_eq!(written.as_object_mut().unwrap().remove("type"), Some(serde_json::json!("cholesky")));
        let again = CholeskyAffine::from_config(2, &written).unwrap();
        assert_eq!(again.params(), layer.params());
        for bad in [
            serde_json::json!({ "lower": [[0.0], [0.5, 3.0]] }),
            serde_json::json!({ "lower": [[1.0, 2.0], [0.5, 3.0]] }),
            serde_json::json!({ "lower": [[1.0]] }),
            serde_json::json!({ "shift": [1.0] }),
            serde_json::json!({ "scale": 1.0 }),
        ] {
            assert!(CholeskyAffine::from_config(2, &bad).is_err(), "{bad}");
        }
    }
}
