//! Many Well: `dim / 2` independent copies of the double well paired with a standard normal,
//! `log p~(x) = sum_i [log f(x_{2i}) - x_{2i+1}^2 / 2]`. With dim = 2 it is the Double Well.

use bootflow_core::check_dim;
use bootflow_core::{Batch, Error, Result, Rng, Target};

use crate::well::{WELL_Z, WellSampler, dlog_f, log_f};

/// Largest number of pairs for which the 2^pairs-point test set is built (65,536 points).
pub const MAX_TEST_SET_PAIRS: usize = 16;

/// Well coordinate of the test points: the approximate well centres.
pub const TEST_POINT: f64 = 1.7;

/// The Many Well target on R^dim, dim even.
pub struct ManyWell {
    dim: usize,
    sampler: WellSampler,
}

impl ManyWell {
    /// `dim` must be even and at least 2.
    pub fn new(dim: usize) -> Result<Self> {
        if dim < 2 || dim % 2 == 1 {
            return Err(Error::Config(format!("manywell: dim = {dim} must be even and at least 2")));
        }
        Ok(Self { dim, sampler: WellSampler::new() })
    }

    /// Number of (double well, Gaussian) pairs.
    pub fn pairs(&self) -> usize {
        self.dim / 2
    }

    /// `log Z` of one pair: `ln(WELL_Z) + ln(2 pi) / 2`.
    pub fn log_z_pair() -> f64 {
        WELL_Z.ln() + 0.5 * (2.0 * std::f64::consts::PI).ln()
    }
}

impl Target for ManyWell {
    fn dim(&self) -> usize {
        self.dim
    }

    fn log_prob(&self, x: &[f64]) -> Result<f64> {
        check_dim("manywell point", x.len(), self.dim)?;
        Ok(x.chunks_exact(2).map(|p| log_f(p[0]) - 0.5 * p[1] * p[1]).sum())
    }

    fn has_grad(&self) -> bool {
        true
    }

    fn log_prob_grad(&self, x: &[f64], grad: &mut [f64]) -> Result<f64> {
        check_dim("manywell point", x.len(), self.dim)?;
        check_dim("manywell gradient", grad.len(), self.dim)?;
        let mut total = 0.0;
        for (p, g) in x.chunks_exact(2).zip(grad.chunks_exact_mut(2)) {
            total += log_f(p[0]) - 0.5 * p[1] * p[1];
            g[0] = dlog_f(p[0]);
            g[1] = -p[1];
        }
        Ok(total)
    }

    fn has_sampler(&self) -> bool {
        true
    }

    fn sample(&self, n: usize, rng: &mut Rng) -> Result<Batch> {
        let mut x = Batch::zeros(self.dim, n);
        bootflow_core::rng::fill_normal(rng, x.as_mut_slice());
        for mut col in x.column_iter_mut() {
            for i in 0..self.pairs() {
                col[2 * i] = self.sampler.draw(rng);
            }
        }
        Ok(x)
    }

    fn log_z(&self) -> Option<f64> {
        Some(self.pairs() as f64 * Self::log_z_pair())
    }

    /// The 2^pairs points with well coordinates +-1.7 (bit i of the column index set: +) and
    /// Gaussian coordinates 0; `None` beyond [`MAX_TEST_SET_PAIRS`] pairs.
    fn test_set(&self) -> Option<Batch> {
        let k = self.pairs();
        if k > MAX_TEST_SET_PAIRS {
            return None;
        }
        Some(Batch::from_fn(self.dim, 1 << k, |r, j| {
            if r % 2 == 1 {
                0.0
            } else if (j >> (r / 2)) & 1 == 1 {
                TEST_POINT
            } else {
                -TEST_POINT
            }
        }))
    }
}
