//! A target whose `+inf` log-densities are errors. `-inf` says "outside the support" and NaN is
//! skipped or reported by the caller, but `+inf` is infinite mass at a point: a sampler walks to
//! it and stays (the chains then disagree and nothing reports why), and a flow's weights become
//! NaN. Every target the front ends build is wrapped in this check, which costs one pass over the
//! output values.

use crate::Batch;
use crate::error::{Error, Result};
use crate::model::target::Target;
use crate::rng::Rng;

/// `inner`, with an error naming the point wherever it returns `+inf`.
pub struct NoPositiveInfinity {
    /// The checked target.
    pub inner: Box<dyn Target>,
    /// What the error calls it (its name or script path).
    pub name: String,
}

/// Coordinates shown in the error (a lattice point has hundreds).
const SHOWN: usize = 6;

impl NoPositiveInfinity {
    fn check(&self, x: &Batch, out: &[f64]) -> Result<()> {
        match out.iter().position(|v| *v == f64::INFINITY) {
            None => Ok(()),
            Some(j) => Err(self.error(x.column(j).as_slice())),
        }
    }

    fn check_one(&self, x: &[f64], v: f64) -> Result<f64> {
        if v == f64::INFINITY { Err(self.error(x)) } else { Ok(v) }
    }

    fn error(&self, x: &[f64]) -> Error {
        let mut shown: Vec<String> = x.iter().take(SHOWN).map(|v| format!("{v}")).collect();
        if x.len() > SHOWN {
            shown.push(format!("... ({} coordinates)", x.len()));
        }
        Error::Other(format!(
            "target '{}' returned log-density +inf at x = [{}]: a log-density may be -inf (outside the support) but never +inf",
            self.name,
            shown.join(", ")
        ))
    }
}

impl Target for NoPositiveInfinity {
    fn dim(&self) -> usize {
        self.inner.dim()
    }
    fn log_prob(&self, x: &[f64]) -> Result<f64> {
        let v = self.inner.log_prob(x)?;
        self.check_one(x, v)
    }
    fn has_grad(&self) -> bool {
        self.inner.has_grad()
    }
    fn log_prob_grad(&self, x: &[f64], grad: &mut [f64]) -> Result<f64> {
        let v = self.inner.log_prob_grad(x, grad)?;
        self.check_one(x, v)
    }
    fn log_prob_batch(&self, x: &Batch, out: &mut [f64]) -> Result<()> {
        self.inner.log_prob_batch(x, out)?;
        self.check(x, out)
    }
    fn log_prob_grad_batch(&self, x: &Batch, out: &mut [f64], grad: &mut Batch) -> Result<()> {
        self.inner.log_prob_grad_batch(x, out, grad)?;
        self.check(x, out)
    }
    fn has_sampler(&self) -> bool {
        self.inner.has_sampler()
    }
    fn sample(&self, n: usize, rng: &mut Rng) -> Result<Batch> {
        self.inner.sample(n, rng)
    }
    fn log_z(&self) -> Option<f64> {
        self.inner.log_z()
    }
    fn observable_names(&self) -> Vec<String> {
        self.inner.observable_names()
    }
    fn observables(&self, x: &[f64], out: &mut [f64]) -> Result<()> {
        self.inner.observables(x, out)
    }
    fn known_means(&self) -> Vec<(String, f64)> {
        self.inner.known_means()
    }
    fn test_set(&self) -> Option<Batch> {
        self.inner.test_set()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Registry;
    use serde_json::json;

    /// `+inf` at the origin, a standard Gaussian elsewhere.
    struct Spike;
    impl Target for Spike {
        fn dim(&self) -> usize {
            2
        }
        fn log_prob(&self, x: &[f64]) -> Result<f64> {
            Ok(if x == [0.0, 0.0] { f64::INFINITY } else { -0.5 * (x[0] * x[0] + x[1] * x[1]) })
        }
    }

    #[test]
    fn plus_infinity_is_an_error_naming_the_point_and_other_values_pass_unchanged() {
        let t = NoPositiveInfinity { inner: Box::new(Spike), name: "spike".into() };
        let x = Batch::from_column_slice(2, 3, &[1.0, 2.0, 0.0, 0.0, -1.0, 0.5]);
        let mut out = vec![0.0; 3];
        let err = t.log_prob_batch(&x, &mut out).unwrap_err().to_string();
        assert!(err.contains("target 'spike' returned log-density +inf at x = [0, 0]"), "{err}");
        assert!(t.log_prob(&[0.0, 0.0]).is_err());
        assert_eq!(t.log_prob(&[1.0, 0.0]).unwrap(), -0.5);

        let reg = Registry::with_builtins();
        let plain = reg.target("gaussian", &json!({"dim": 2})).unwrap();
        let checked =
            NoPositiveInfinity { inner: reg.target("gaussian", &json!({"dim": 2})).unwrap(), name: "g".into() };
        let (mut a, mut b) = (vec![0.0; 3], vec![0.0; 3]);
        let (mut ga, mut gb) = (Batch::zeros(2, 3), Batch::zeros(2, 3));
        plain.log_prob_grad_batch(&x, &mut a, &mut ga).unwrap();
        checked.log_prob_grad_batch(&x, &mut b, &mut gb).unwrap();
        assert_eq!((a, ga), (b, gb));
        assert!(checked.has_grad() && checked.has_sampler() && checked.log_z() == plain.log_z());
    }
}
