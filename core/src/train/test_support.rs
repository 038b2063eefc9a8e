//! Targets and a nonlinear layer used by the training tests.

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::Batch;
use crate::error::Result;
use crate::model::bijection::{Bijection, Cotangent, Direction, Pass, Tape};
use crate::model::target::Target;
use crate::rng::{Rng, fill_normal};

/// Independent Gaussians `N(mu_i, sigma_i^2)` with `log p~ = -sum (x - mu)^2 / (2 sigma^2)`
/// (unnormalised on purpose: `log Z != 0`).
pub struct Gaussian {
    pub mu: Vec<f64>,
    pub sigma: Vec<f64>,
}

impl Target for Gaussian {
    fn dim(&self) -> usize {
        self.mu.len()
    }
    fn log_prob(&self, x: &[f64]) -> Result<f64> {
        Ok(x.iter().zip(&self.mu).zip(&self.sigma).map(|((x, m), s)| -0.5 * ((x - m) / s).powi(2)).sum())
    }
    fn has_grad(&self) -> bool {
        true
    }
    fn log_prob_grad(&self, x: &[f64], grad: &mut [f64]) -> Result<f64> {
        for i in 0..x.len() {
            grad[i] = -(x[i] - self.mu[i]) / (self.sigma[i] * self.sigma[i]);
        }
        self.log_prob(x)
    }
    fn has_sampler(&self) -> bool {
        true
    }
    fn sample(&self, n: usize, rng: &mut Rng) -> Result<Batch> {
        let mut b = Batch::zeros(self.dim(), n);
        fill_normal(rng, b.as_mut_slice());
        for mut c in b.column_iter_mut() {
            for i in 0..self.dim() {
                c[i] = self.mu[i] + self.sigma[i] * c[i];
            }
        }
        Ok(b)
    }
}

/// A target whose batched evaluation returns NaN on chosen calls (counted from 0).
pub struct NanOnCalls {
    pub inner: Gaussian,
    pub bad_calls: Vec<usize>,
    pub calls: AtomicUsize,
}

impl Target for NanOnCalls {
    fn dim(&self) -> usize {
        self.inner.dim()
    }
    fn log_prob(&self, x: &[f64]) -> Result<f64> {
        self.inner.log_prob(x)
    }
    fn log_prob_batch(&self, x: &Batch, out: &mut [f64]) -> Result<()> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst);
        for (j, o) in out.iter_mut().enumerate() {
            *o = if self.bad_calls.contains(&call) { f64::NAN } else { self.inner.log_prob(x.column(j).as_slice())? };
        }
        Ok(())
    }
}

/// `x = sinh(z)` element-wise: a parameter-free layer whose log-determinant depends on the input.
pub struct Sinh(pub usize);

struct Input(Batch);

impl Bijection for Sinh {
    fn dim(&self) -> usize {
        self.0
    }
    fn pass(&self, direction: Direction, input: &Batch, record: bool) -> Result<Pass> {
        let (out, log_det) = match direction {
            Direction::Forward => {
                (input.map(f64::sinh), input.column_iter().map(|c| c.iter().map(|v| v.cosh().ln()).sum()).collect())
            }
            Direction::Inverse => (
                input.map(f64::asinh),
                input.column_iter().map(|c| c.iter().map(|v| -0.5 * (1.0 + v * v).ln()).sum()).collect(),
            ),
        };
        Ok(Pass { out, log_det, tape: record.then(|| Tape::new(Input(input.clone()))) })
    }
    fn vjp(&self, direction: Direction, tape: &Tape, g: Cotangent<'_>) -> Result<Batch> {
        let v = &tape.get::<Input>().expect("sinh tape").0;
        Ok(Batch::from_fn(v.nrows(), v.ncols(), |i, j| {
            let (o, ld, v) = (g.out[(i, j)], g.log_det[j], v[(i, j)]);
            match direction {
                Direction::Forward => o * v.cosh() + ld * v.tanh(),
                Direction::Inverse => o / (1.0 + v * v).sqrt() - ld * v / (1.0 + v * v),
            }
        }))
    }
}

#[test]
fn sinh_layer_passes_the_bijection_checks() {
    let mut r = crate::rng::stream(30, 0);
    let z = crate::testing::random_batch(3, 6, &mut r);
    crate::testing::check_bijection(&mut Sinh(3), &z, 1e-6, 1e-10).unwrap();
}
