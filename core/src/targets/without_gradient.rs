//! A target with its gradient hidden: the same density, sampler and observables, but
//! `has_grad() == false`, so that gradient-free methods (the g1/g2 estimators, random-walk
//! kernels) can be run, and shown to work, on a target that happens to have a gradient.

use crate::Batch;
use crate::error::{Error, Result};
use crate::model::target::Target;
use crate::rng::Rng;

/// `inner` without its gradient.
pub struct WithoutGradient(pub Box<dyn Target>);

impl Target for WithoutGradient {
    fn dim(&self) -> usize {
        self.0.dim()
    }
    fn log_prob(&self, x: &[f64]) -> Result<f64> {
        self.0.log_prob(x)
    }
    fn has_grad(&self) -> bool {
        false
    }
    fn log_prob_grad(&self, _x: &[f64], _grad: &mut [f64]) -> Result<f64> {
        Err(Error::Unsupported("gradient of this target (hidden by `gradient = false`)".into()))
    }
    fn log_prob_batch(&self, x: &Batch, out: &mut [f64]) -> Result<()> {
        self.0.log_prob_batch(x, out)
    }
    fn log_prob_grad_batch(&self, _x: &Batch, _out: &mut [f64], _grad: &mut Batch) -> Result<()> {
        Err(Error::Unsupported("gradient of this target (hidden by `gradient = false`)".into()))
    }
    fn has_sampler(&self) -> bool {
        self.0.has_sampler()
    }
    fn sample(&self, n: usize, rng: &mut Rng) -> Result<Batch> {
        self.0.sample(n, rng)
    }
    fn log_z(&self) -> Option<f64> {
        self.0.log_z()
    }
    fn observable_names(&self) -> Vec<String> {
        self.0.observable_names()
    }
    fn observables(&self, x: &[f64], out: &mut [f64]) -> Result<()> {
        self.0.observables(x, out)
    }
    fn known_means(&self) -> Vec<(String, f64)> {
        self.0.known_means()
    }
    fn test_set(&self) -> Option<Batch> {
        self.0.test_set()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Registry;
    use serde_json::json;

    #[test]
    fn hides_the_gradient_and_nothing_else() {
        let reg = Registry::with_builtins();
        let plain = reg.target("gaussian", &json!({"dim": 3})).unwrap();
        let hidden = WithoutGradient(reg.target("gaussian", &json!({"dim": 3})).unwrap());
        assert!(plain.has_grad() && !hidden.has_grad());
        let x = Batch::from_column_slice(3, 2, &[0.1, -0.2, 0.3, 1.0, 2.0, -1.5]);
        let (mut a, mut b) = (vec![0.0; 2], vec![0.0; 2]);
        plain.log_prob_batch(&x, &mut a).unwrap();
        hidden.log_prob_batch(&x, &mut b).unwrap();
        assert_eq!(a, b);
        assert_eq!(hidden.log_z(), plain.log_z());
        let mut g = Batch::zeros(3, 2);
        let err = hidden.log_prob_grad_batch(&x, &mut b, &mut g).unwrap_err();
        assert!(matches!(err, Error::Unsupported(_)), "{err}");
        assert!(hidden.log_prob_grad(&[0.0; 3], &mut [0.0; 3]).is_err());
    }
}
