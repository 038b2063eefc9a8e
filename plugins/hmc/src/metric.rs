//! The metric of `hmc` and `nuts`: the inverse mass matrix `M^-1` (what adaptation estimates:
//! the target's covariance), diagonal or dense. Kinetic energy `p^T M^-1 p / 2`, velocity
//! `M^-1 p`, momenta drawn from `N(0, M)`.

use bootflow_core::{Error, Result};
use nalgebra::{DMatrix, DVector};
use serde::Deserialize;

/// Most coordinates a dense metric may have: its matrices grow as `d^2` (8 MiB each here), and
/// its products cost `d^2` per leapfrog step.
pub const MAX_DENSE_DIM: usize = 1024;

/// Which metric a kernel adapts (config key `metric`).
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum MetricKind {
    /// One variance per coordinate.
    #[default]
    Diag,
    /// The full covariance.
    Dense,
}

/// An inverse mass matrix.
#[derive(Clone, Debug)]
pub enum Metric {
    /// Its diagonal.
    Diag(Vec<f64>),
    /// The matrix and its lower Cholesky factor `L` (`M^-1 = L L^T`).
    Dense { inv: DMatrix<f64>, chol: DMatrix<f64> },
}

impl Metric {
    /// The metric of kind `kind` whose mass matrix is `diag(mass)`.
    pub fn from_mass(kind: MetricKind, mass: &[f64]) -> Result<Self> {
        let inv: Vec<f64> = mass.iter().map(|m| 1.0 / m).collect();
        match kind {
            MetricKind::Diag => Ok(Metric::Diag(inv)),
            MetricKind::Dense => Self::dense(DMatrix::from_diagonal(&DVector::from_vec(inv))),
        }
    }

    /// A dense metric with inverse mass matrix `inv` (symmetric positive definite).
    pub fn dense(inv: DMatrix<f64>) -> Result<Self> {
        if inv.nrows() > MAX_DENSE_DIM {
            return Err(Error::Config(format!(
                "a dense metric in {} dimensions is refused (at most {MAX_DENSE_DIM}): use metric = \"diag\"",
                inv.nrows()
            )));
        }
        let chol = inv
            .clone()
            .cholesky()
            .ok_or_else(|| Error::Config("the inverse mass matrix is not positive definite".into()))?
            .l();
        Ok(Metric::Dense { inv, chol })
    }

    /// `p^T M^-1 p`.
    pub fn kinetic2<'a>(&self, p: impl Iterator<Item = &'a f64> + Clone) -> f64 {
        match self {
            Metric::Diag(inv) => p.zip(inv).map(|(p, im)| p * p * im).sum(),
            Metric::Dense { inv, .. } => {
                let p = DVector::from_iterator(inv.nrows(), p.copied());
                p.dot(&(inv * &p))
            }
        }
    }

    /// `M^-1 p`.
    pub fn velocity(&self, p: &[f64]) -> Vec<f64> {
        match self {
            Metric::Diag(inv) => p.iter().zip(inv).map(|(p, im)| p * im).collect(),
            Metric::Dense { inv, .. } => (inv * DVector::from_column_slice(p)).data.into(),
        }
    }

    /// `x += eps M^-1 p`, the position step of the leapfrog.
    pub fn drift<'a>(&self, x: impl Iterator<Item = &'a mut f64>, p: &[f64], eps: f64) {
        match self {
            Metric::Diag(inv) => x.zip(p).zip(inv).for_each(|((x, p), im)| *x += eps * im * p),
            Metric::Dense { .. } => x.zip(self.velocity(p)).for_each(|(x, v)| *x += eps * v),
        }
    }

    /// Turns standard normal `z` into a momentum `~ N(0, M)`: `z / sqrt(M^-1_ii)`, or the
    /// solution of `L^T p = z` (its covariance is `(L L^T)^-1 = M`).
    pub fn momentum(&self, z: &mut [f64]) {
        match self {
            Metric::Diag(inv) => z.iter_mut().zip(inv).for_each(|(z, im)| *z /= im.sqrt()),
            Metric::Dense { chol, .. } => {
                let mut v = DVector::from_column_slice(z);
                chol.tr_solve_lower_triangular_mut(&mut v);
                z.copy_from_slice(v.as_slice());
            }
        }
    }

    /// Its values for a kernel's state: the diagonal, or the matrix column by column.
    pub fn values(&self) -> &[f64] {
        match self {
            Metric::Diag(inv) => inv,
            Metric::Dense { inv, .. } => inv.as_slice(),
        }
    }

    /// How many values [`Metric::values`] gives for `dim` coordinates.
    pub fn values_len(kind: MetricKind, dim: usize) -> usize {
        match kind {
            MetricKind::Diag => dim,
            MetricKind::Dense => dim * dim,
        }
    }

    /// The metric of the same kind from [`Metric::values`].
    pub fn with_values(&self, v: &[f64]) -> Result<Self> {
        match self {
            Metric::Diag(_) => Ok(Metric::Diag(v.to_vec())),
            Metric::Dense { inv, .. } => Self::dense(DMatrix::from_column_slice(inv.nrows(), inv.ncols(), v)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bootflow_core::rng::{fill_normal, stream};

    #[test]
    fn dense_momenta_have_the_mass_matrix_as_covariance() {
        let inv = DMatrix::from_row_slice(2, 2, &[4.0, 1.2, 1.2, 1.0]);
        let m = Metric::dense(inv.clone()).unwrap();
        let mass = inv.clone().try_inverse().unwrap();
        let n = 40_000;
        let mut cov = DMatrix::<f64>::zeros(2, 2);
        let mut r = stream(1, 0);
        for _ in 0..n {
            let mut z = [0.0; 2];
            fill_normal(&mut r, &mut z);
            m.momentum(&mut z);
            let p = DVector::from_column_slice(&z);
            cov += &p * p.transpose() / n as f64;
        }
        for (got, want) in cov.iter().zip(mass.iter()) {
            // Entries of a sample covariance of 40,000 draws: standard error below 0.02 here.
            assert!((got - want).abs() < 0.06, "{cov} vs {mass}");
        }
        let p = [0.3, -0.7];
        let v = m.velocity(&p);
        let exact = &inv * DVector::from_column_slice(&p);
        assert!((v[0] - exact[0]).abs() < 1e-15 && (v[1] - exact[1]).abs() < 1e-15);
        assert!((m.kinetic2(p.iter()) - (v[0] * p[0] + v[1] * p[1])).abs() < 1e-15);
        let back = m.with_values(m.values()).unwrap();
        assert_eq!(back.values(), m.values());
        assert!(Metric::dense(DMatrix::from_row_slice(2, 2, &[1.0, 2.0, 2.0, 1.0])).is_err(), "indefinite");
    }
}
