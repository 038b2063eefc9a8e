//! The quadratic test function of the FAB papers, f(x) = (x + s)^T A (x + s) + b^T (x + s), whose
//! expectation under a diagonal Gaussian mixture is known in closed form.

use serde::Deserialize;

use crate::error::{Error, Result};

/// `f(x) = (x + s)^T A (x + s) + b^T (x + s)`; `A` need not be symmetric.
#[derive(Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct QuadraticTestFunction {
    /// The shift `s`.
    pub shift: Vec<f64>,
    /// `A`, as a list of rows.
    pub a: Vec<Vec<f64>>,
    /// The linear coefficients `b`.
    pub b: Vec<f64>,
}

impl QuadraticTestFunction {
    /// Checks that every part has dimension `dim`.
    pub fn validate(&self, dim: usize) -> Result<()> {
        let rows_ok = self.a.len() == dim && self.a.iter().all(|r| r.len() == dim);
        if self.shift.len() != dim || self.b.len() != dim || !rows_ok {
            return Err(Error::Config(format!("test_function: shift, a (rows) and b must all have dimension {dim}")));
        }
        let finite = self.shift.iter().chain(&self.b).chain(self.a.iter().flatten()).all(|v| v.is_finite());
        if !finite {
            return Err(Error::Config("test_function: every coefficient must be finite".into()));
        }
        Ok(())
    }

    /// `f(x)`.
    pub fn value(&self, x: &[f64]) -> f64 {
        let mut total = 0.0;
        for (i, row) in self.a.iter().enumerate() {
            let yi = x[i] + self.shift[i];
            let ay: f64 = row.iter().enumerate().map(|(j, a)| a * (x[j] + self.shift[j])).sum();
            total += yi * ay + self.b[i] * yi;
        }
        total
    }

    /// `E f(x)` for `x ~ N(mean, diag(std^2))`: `f(mean) + sum_i A_ii std_i^2`.
    pub fn gaussian_mean(&self, mean: &[f64], std: &[f64]) -> f64 {
        self.value(mean) + std.iter().enumerate().map(|(i, s)| self.a[i][i] * s * s).sum::<f64>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_and_gaussian_mean_by_hand() {
        let f = QuadraticTestFunction {
            shift: vec![1.0, 0.0],
            a: vec![vec![2.0, 1.0], vec![0.0, 3.0]],
            b: vec![1.0, -1.0],
        };
        f.validate(2).unwrap();
        // y = (2, 1): y^T A y = 2*4 + 1*2 + 3*1 = 13, b.y = 1.
        assert_eq!(f.value(&[1.0, 1.0]), 14.0);
        assert_eq!(f.gaussian_mean(&[1.0, 1.0], &[0.5, 2.0]), 14.0 + 2.0 * 0.25 + 3.0 * 4.0);
        assert!(f.validate(3).is_err());
    }
}
