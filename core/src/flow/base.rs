//! The base distribution of a flow: a fixed diagonal Gaussian, its log-density and its gradient.

use crate::Batch;

use crate::rng::{Rng, fill_normal};

use super::{Flow, LN_2PI};

impl Flow {
    /// Base log-density of each column of `z`.
    pub fn base_log_prob(&self, z: &Batch) -> Vec<f64> {
        let norm: f64 = self.base_std.iter().map(|s| s.ln()).sum::<f64>() + 0.5 * self.dim as f64 * LN_2PI;
        z.column_iter()
            .map(|c| {
                let q: f64 =
                    c.iter().zip(&self.base_mean).zip(&self.base_std).map(|((v, m), s)| ((v - m) / s).powi(2)).sum();
                -0.5 * q - norm
            })
            .collect()
    }

    /// `n` draws from the base.
    pub fn sample_base(&self, n: usize, rng: &mut Rng) -> Batch {
        let mut z = Batch::zeros(self.dim, n);
        fill_normal(rng, z.as_mut_slice());
        for mut c in z.column_iter_mut() {
            for i in 0..self.dim {
                c[i] = self.base_mean[i] + self.base_std[i] * c[i];
            }
        }
        z
    }

    /// `d log q0(z) / dz` per column.
    pub fn base_grad(&self, z: &Batch) -> Batch {
        let mut g = z.clone();
        for mut c in g.column_iter_mut() {
            for i in 0..self.dim {
                c[i] = -(c[i] - self.base_mean[i]) / (self.base_std[i] * self.base_std[i]);
            }
        }
        g
    }
}
