//! FAB's prioritised replay buffer: AIS samples with their log weights, drawn in proportion to
//! the weight, oldest evicted first. Each entry also keeps `log q` of the flow when its weight
//! was last set, so that a drawn entry's weight can be brought up to date with the flow that
//! moved on meanwhile: AIS towards p^2/q gives w ∝ p^2/q / proposal, so a new flow multiplies it
//! by `q_stored / q_now`.

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
    /// `log q` of each entry under the flow its weight refers to.
    #[serde(with = "crate::train::float_bits")]
    log_q: Vec<f64>,
    /// The slot written next: the oldest entry once the buffer is full.
    next: usize,
}

impl ReplayBuffer {
    /// An empty buffer for `dim`-dimensional points holding at most `capacity` entries (both > 0).
    pub fn new(dim: usize, capacity: usize) -> Result<Self> {
        if capacity == 0 || dim == 0 {
            return Err(Error::Config("replay buffer: size and dimension must be positive".into()));
        }
        Ok(Self { dim, capacity, x: Vec::new(), log_w: Vec::new(), log_q: Vec::new(), next: 0 })
    }

    /// Number of stored entries (at most the capacity).
    pub fn len(&self) -> usize {
        self.log_w.len()
    }

    /// Whether nothing has been added yet.
    pub fn is_empty(&self) -> bool {
        self.log_w.is_empty()
    }

    /// Dimension of the stored points.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Stored log weights in slot order.
    pub fn log_weights(&self) -> &[f64] {
        &self.log_w
    }

    /// Stored `log q` (of the flow each weight refers to) of slots `idx`.
    pub fn stored_log_q(&self, idx: &[usize]) -> Vec<f64> {
        idx.iter().map(|&i| self.log_q[i]).collect()
    }

    /// Checks the invariants a deserialised buffer (from a checkpoint) must satisfy.
    pub fn validate(&self) -> Result<()> {
        let n = self.log_w.len();
        if self.log_q.len() != n || self.x.len() != n * self.dim || n > self.capacity || self.next >= self.capacity {
            return Err(Error::Config("replay buffer in the checkpoint is inconsistent".into()));
        }
        Ok(())
    }

    /// Adds every column with a finite log weight and log q (a zero or undefined weight could
    /// never be drawn), overwriting the oldest entries when full.
    pub fn push(&mut self, x: &Batch, log_w: &[f64], log_q: &[f64]) -> Result<()> {
        check_dim("replay buffer point dimension", x.nrows(), self.dim)?;
        check_dim("replay buffer log weights", log_w.len(), x.ncols())?;
        check_dim("replay buffer log q", log_q.len(), x.ncols())?;
        for (j, (&lw, &lq)) in log_w.iter().zip(log_q).enumerate().filter(|(_, (w, q))| w.is_finite() && q.is_finite())
        {
            let col = x.column(j);
            if self.len() < self.capacity {
                self.x.extend(col.iter());
                self.log_w.push(lw);
                self.log_q.push(lq);
            } else {
                self.x[self.next * self.dim..(self.next + 1) * self.dim].copy_from_slice(col.as_slice());
                self.log_w[self.next] = lw;
                self.log_q[self.next] = lq;
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

    /// Brings the weights of slots `idx` up to date with a flow whose `log q` there is
    /// `log_q_now`: `log w += log q_stored - log q_now`, then `log q_stored = log q_now`; once per
    /// distinct slot (a slot drawn twice in a batch is one stored sample). Non-finite values
    /// leave the slot as it was.
    pub fn adjust(&mut self, idx: &[usize], log_q_now: &[f64]) -> Result<()> {
        check_dim("replay buffer adjustments", log_q_now.len(), idx.len())?;
        if let Some(&i) = idx.iter().find(|&&i| i >= self.len()) {
            return Err(Error::Dim(format!("replay buffer slot {i} of {}", self.len())));
        }
        let mut done = vec![false; self.len()];
        for (&i, &q) in idx.iter().zip(log_q_now) {
            let w = self.log_w[i] + self.log_q[i] - q;
            if !done[i] && w.is_finite() {
                self.log_w[i] = w;
                self.log_q[i] = q;
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
        let lw = [700.0, 700.0 + 2f64.ln(), 700.0 + 5f64.ln(), f64::NEG_INFINITY];
        b.push(&line(&[0.0, 1.0, 2.0, 3.0]), &lw, &[0.0; 4]).unwrap();
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
        b.push(&line(&[1.0, 2.0]), &[0.0, 0.0], &[0.0; 2]).unwrap();
        b.push(&line(&[3.0, 4.0, 5.0]), &[0.0, 0.1, 0.2], &[0.0; 3]).unwrap();
        let mut kept: Vec<f64> = b.points(&[0, 1, 2]).iter().cloned().collect();
        kept.sort_by(f64::total_cmp);
        assert_eq!(kept, vec![3.0, 4.0, 5.0]);
        b.push(&line(&[6.0]), &[0.3], &[0.0]).unwrap();
        let mut kept: Vec<f64> = b.points(&[0, 1, 2]).iter().cloned().collect();
        kept.sort_by(f64::total_cmp);
        assert_eq!(kept, vec![4.0, 5.0, 6.0]);
    }

    #[test]
    fn adjusts_each_drawn_slot_once_from_its_stored_log_q() {
        let mut b = ReplayBuffer::new(1, 4).unwrap();
        b.push(&line(&[0.0, 1.0, 2.0, 3.0]), &[0.0, 1.0, 2.0, 3.0], &[-1.0, -2.0, -3.0, -4.0]).unwrap();
        b.adjust(&[1, 3, 1, 0], &[-2.5, -9.0, -2.5, 1.0]).unwrap();
        assert_eq!(b.log_weights(), &[-2.0, 1.5, 2.0, 8.0]);
        assert_eq!(b.stored_log_q(&[0, 1, 2, 3]), vec![1.0, -2.5, -3.0, -9.0]);
        // A second adjustment with the same flow changes nothing.
        b.adjust(&[1, 3], &[-2.5, -9.0]).unwrap();
        assert_eq!(b.log_weights(), &[-2.0, 1.5, 2.0, 8.0]);
        assert!(b.adjust(&[7], &[0.0]).is_err());
        assert!(b.validate().is_ok());
    }
}
