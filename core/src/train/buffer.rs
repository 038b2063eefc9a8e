//! FAB's prioritised replay buffer: AIS samples with their log weights, drawn in proportion to
//! the weight, oldest evicted first, weights corrected as the flow moves on.

use serde::{Deserialize, Serialize};

use crate::Batch;
use crate::error::{Error, Result, check_dim};
use crate::rng::Rng;

/// A fixed-capacity ring of `(x, log w)` pairs.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ReplayBuffer {
    dim: usize,
    capacity: usize,
    /// Points in slot order, `dim` values each.
    #[serde(with = "crate::train::float_bits")]
    x: Vec<f64>,
    #[serde(with = "crate::train::float_bits")]
    log_w: Vec<f64>,
    /// The slot written next: the oldest entry once the buffer is full.
    next: usize,
}

impl ReplayBuffer {
    pub fn new(dim: usize, capacity: usize) -> Result<Self> {
        if capacity == 0 || dim == 0 {
            return Err(Error::Config("replay buffer: size and dimension must be positive".into()));
        }
        Ok(Self { dim, capacity, x: Vec::new(), log_w: Vec::new(), next: 0 })
    }

    pub fn len(&self) -> usize {
        self.log_w.len()
    }

    pub fn is_empty(&self) -> bool {
        self.log_w.is_empty()
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Stored log weights in slot order.
    pub fn log_weights(&self) -> &[f64] {
        &self.log_w
    }

    /// Adds every column with a finite log weight (a zero or undefined weight could never be
    /// drawn), overwriting the oldest entries when full.
    pub fn push(&mut self, x: &Batch, log_w: &[f64]) -> Result<()> {
        check_dim("replay buffer point dimension", x.nrows(), self.dim)?;
        check_dim("replay buffer log weights", log_w.len(), x.ncols())?;
        for (j, &lw) in log_w.iter().enumerate().filter(|(_, w)| w.is_finite()) {
            let col = x.column(j);
            if self.len() < self.capacity {
                self.x.extend(col.iter());
                self.log_w.push(lw);
            } else {
                self.x[self.next * self.dim..(self.next + 1) * self.dim].copy_from_slice(col.as_slice());
                self.log_w[self.next] = lw;
            }
            self.next = (self.next + 1) % self.capacity;
        }
        Ok(())
    }

    /// `n` slot indices drawn with replacement, slot `i` with probability `w_i / sum w`.
    pub fn sample(&self, n: usize, rng: &mut Rng) -> Result<Vec<usize>> {
        if self.is_empty() {
            return Err(Error::Other("sampling from an empty replay buffer".into()));
        }
        let top = self.log_w.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let mut cumulative = Vec::with_capacity(self.len());
        let mut total = 0.0;
        for lw in &self.log_w {
            total += (lw - top).exp();
            cumulative.push(total);
        }
        Ok((0..n)
            .map(|_| {
                let u: f64 = rand::Rng::random::<f64>(rng) * total;
                cumulative.partition_point(|&c| c <= u).min(self.len() - 1)
            })
            .collect())
    }

    /// The points in slots `idx`, as columns.
    pub fn points(&self, idx: &[usize]) -> Batch {
        let mut b = Batch::zeros(self.dim, idx.len());
        for (j, &i) in idx.iter().enumerate() {
            b.column_mut(j).copy_from_slice(&self.x[i * self.dim..(i + 1) * self.dim]);
        }
        b
    }

    /// Adds `min(delta_j, max_log_adjust)` to the log weight of slot `idx[j]`, once per distinct
    /// slot (a slot drawn twice in a batch is one stored sample, corrected once).
    pub fn adjust(&mut self, idx: &[usize], delta: &[f64], max_log_adjust: f64) -> Result<()> {
        check_dim("replay buffer adjustments", delta.len(), idx.len())?;
        let mut done = vec![false; self.len()];
        for (&i, &d) in idx.iter().zip(delta) {
            if i >= self.len() {
                return Err(Error::Dim(format!("replay buffer slot {i} of {}", self.len())));
            }
            if !done[i] && !d.is_nan() {
                self.log_w[i] += d.min(max_log_adjust);
                done[i] = true;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(values: &[f64]) -> Batch {
        Batch::from_row_slice(1, values.len(), values)
    }

    #[test]
    fn draws_in_proportion_to_weights() {
        let mut b = ReplayBuffer::new(1, 10).unwrap();
        // Weights 1 : 2 : 5 : 0 (the -inf entry is not stored), at a large common offset.
        b.push(&line(&[0.0, 1.0, 2.0, 3.0]), &[700.0, 700.0 + 2f64.ln(), 700.0 + 5f64.ln(), f64::NEG_INFINITY])
            .unwrap();
        assert_eq!(b.len(), 3);
        let n = 80_000;
        let idx = b.sample(n, &mut crate::rng::stream(4, 0)).unwrap();
        for (slot, p) in [(0, 1.0 / 8.0), (1, 2.0 / 8.0), (2, 5.0 / 8.0)] {
            let freq = idx.iter().filter(|&&i| i == slot).count() as f64 / n as f64;
            // Binomial MCSE sqrt(p (1 - p) / n); 4 of them.
            let mcse = (p * (1.0 - p) / n as f64).sqrt();
            assert!((freq - p).abs() < 4.0 * mcse, "slot {slot}: {freq} vs {p}");
        }
    }

    #[test]
    fn evicts_oldest_first() {
        let mut b = ReplayBuffer::new(1, 3).unwrap();
        b.push(&line(&[1.0, 2.0]), &[0.0, 0.0]).unwrap();
        b.push(&line(&[3.0, 4.0, 5.0]), &[0.0, 0.1, 0.2]).unwrap();
        let mut kept: Vec<f64> = b.points(&[0, 1, 2]).iter().cloned().collect();
        kept.sort_by(f64::total_cmp);
        assert_eq!(kept, vec![3.0, 4.0, 5.0]);
        b.push(&line(&[6.0]), &[0.3]).unwrap();
        let mut kept: Vec<f64> = b.points(&[0, 1, 2]).iter().cloned().collect();
        kept.sort_by(f64::total_cmp);
        assert_eq!(kept, vec![4.0, 5.0, 6.0]);
    }

    #[test]
    fn adjusts_each_drawn_slot_once_with_clipping() {
        let mut b = ReplayBuffer::new(1, 4).unwrap();
        b.push(&line(&[0.0, 1.0, 2.0, 3.0]), &[0.0, 1.0, 2.0, 3.0]).unwrap();
        b.adjust(&[1, 3, 1, 0], &[0.5, 5.0, 0.5, -2.0], 2.0).unwrap();
        assert_eq!(b.log_weights(), &[-2.0, 1.5, 2.0, 5.0]);
        assert!(b.adjust(&[7], &[0.0], 1.0).is_err());
    }
}
