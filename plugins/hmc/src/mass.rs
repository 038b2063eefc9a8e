//! Windowed adaptation of a diagonal or dense mass matrix during warm-up, after Stan: an initial
//! buffer of 75 adaptation steps lets the chains find the typical set, then windows of 25, 50,
//! 100, ... steps each collect every chain's positions; at a window's end the inverse mass matrix
//! becomes their regularised variance (or covariance), `(n / (n + 5)) var + 1e-3 (5 / (n + 5))`
//! (times the identity), and the step size adapts afresh. Warm-up may end inside a window: its positions are then unused, and the step
//! size has been adapting to the last metric since that metric was set. (The kernel does not
//! know the warm-up length, so there is no closing fast window as in Stan.)

use bootflow_core::{Batch, Error, Result};
use nalgebra::DMatrix;

use crate::metric::{Metric, MetricKind};

/// Adaptation steps before the first window.
const INIT_BUFFER: f64 = 75.0;
/// Length of the first window.
const FIRST_WINDOW: f64 = 25.0;

/// The window schedule and the running moments of the current window.
#[derive(Clone, Debug)]
pub struct MassAdaptation {
    kind: MetricKind,
    /// Adaptation steps seen.
    t: f64,
    /// Step at which the current window ends.
    window_end: f64,
    /// Length of the current window.
    window: f64,
    /// Positions collected in the window, their running mean and sum of squared deviations (or
    /// of the products of deviations, column by column, for a dense metric).
    count: f64,
    mean: Vec<f64>,
    m2: Vec<f64>,
}

impl MassAdaptation {
    pub fn new(dim: usize, kind: MetricKind) -> Self {
        Self {
            kind,
            t: 0.0,
            window_end: INIT_BUFFER + FIRST_WINDOW,
            window: FIRST_WINDOW,
            count: 0.0,
            mean: vec![0.0; dim],
            m2: vec![0.0; Metric::values_len(kind, dim)],
        }
    }

    /// Records one adaptation step's positions (`dim x chains`); at a window's end returns the
    /// new metric.
    pub fn observe(&mut self, x: &Batch) -> Result<Option<Metric>> {
        self.t += 1.0;
        if self.t <= INIT_BUFFER {
            return Ok(None);
        }
        let d = self.mean.len();
        let mut delta = vec![0.0; d];
        for c in x.column_iter() {
            self.count += 1.0;
            for ((m, dl), v) in self.mean.iter_mut().zip(delta.iter_mut()).zip(c.iter()) {
                *dl = v - *m;
                *m += *dl / self.count;
            }
            match self.kind {
                MetricKind::Diag => {
                    for ((s, dl), (v, m)) in self.m2.iter_mut().zip(&delta).zip(c.iter().zip(&self.mean)) {
                        *s += dl * (v - m);
                    }
                }
                MetricKind::Dense => {
                    for (j, (vj, mj)) in c.iter().zip(&self.mean).enumerate() {
                        let after = vj - mj;
                        self.m2[j * d..(j + 1) * d].iter_mut().zip(&delta).for_each(|(s, dl)| *s += dl * after);
                    }
                }
            }
        }
        if self.t < self.window_end {
            return Ok(None);
        }
        let n = self.count;
        let shrink = |s: f64| (n / (n + 5.0)) * (s / (n - 1.0).max(1.0));
        let ridge = 1e-3 * (5.0 / (n + 5.0));
        let metric = match self.kind {
            MetricKind::Diag => Metric::Diag(self.m2.iter().map(|s| shrink(*s) + ridge).collect()),
            MetricKind::Dense => {
                let cov = DMatrix::from_fn(d, d, |i, j| {
                    // Symmetrised: the two halves of the co-moment differ by rounding only.
                    let s = 0.5 * (self.m2[j * d + i] + self.m2[i * d + j]);
                    shrink(s) + if i == j { ridge } else { 0.0 }
                });
                Metric::dense(cov)?
            }
        };
        self.window *= 2.0;
        self.window_end = self.t + self.window;
        self.count = 0.0;
        self.mean.iter_mut().chain(self.m2.iter_mut()).for_each(|v| *v = 0.0);
        Ok(Some(metric))
    }

    /// The dimension it adapts.
    pub fn dim(&self) -> usize {
        self.mean.len()
    }

    /// Length of [`MassAdaptation::state`] for `dim` coordinates.
    pub fn state_len(kind: MetricKind, dim: usize) -> usize {
        4 + dim + Metric::values_len(kind, dim)
    }

    /// `[t, window_end, window, count, mean.., m2..]`.
    pub fn state(&self) -> Vec<f64> {
        let mut s = vec![self.t, self.window_end, self.window, self.count];
        s.extend(&self.mean);
        s.extend(&self.m2);
        s
    }

    /// Restores what [`MassAdaptation::state`] returned.
    pub fn set_state(&mut self, s: &[f64]) -> Result<()> {
        let d = self.mean.len();
        if s.len() != Self::state_len(self.kind, d) {
            return Err(Error::Config(format!("mass adaptation state: {} values for dimension {d}", s.len())));
        }
        [self.t, self.window_end, self.window, self.count] = [s[0], s[1], s[2], s[3]];
        self.mean = s[4..4 + d].to_vec();
        self.m2 = s[4 + d..].to_vec();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_follow_the_schedule_and_return_the_regularised_variance() {
        let mut m = MassAdaptation::new(1, MetricKind::Diag);
        // Two chains at +-2: variance (n-1 denominator) of 2n values alternating +-2.
        let x = Batch::from_column_slice(1, 2, &[2.0, -2.0]);
        let ends: Vec<usize> = (1..=400).filter(|_| m.observe(&x).unwrap().is_some()).collect();
        assert_eq!(ends, [100, 150, 250]);
        let mut m = MassAdaptation::new(1, MetricKind::Diag);
        let var = (1..=100).find_map(|_| m.observe(&x).unwrap()).unwrap();
        let n = 50.0;
        let sample_var = 4.0 * n / (n - 1.0);
        let want = (n / (n + 5.0)) * sample_var + 1e-3 * 5.0 / (n + 5.0);
        assert!((var.values()[0] - want).abs() < 1e-12, "{var:?}");
        let mut back = MassAdaptation::new(1, MetricKind::Diag);
        back.set_state(&m.state()).unwrap();
        assert_eq!(back.state(), m.state());
    }

    #[test]
    fn the_dense_window_returns_the_regularised_covariance() {
        // Two chains at (a, b) and (-a, -b): perfectly correlated coordinates, covariance
        // [[a^2, ab], [ab, b^2]] times n / (n - 1).
        let (a, b) = (2.0, 0.5);
        let x = Batch::from_column_slice(2, 2, &[a, b, -a, -b]);
        let mut m = MassAdaptation::new(2, MetricKind::Dense);
        let metric = (1..=100).find_map(|_| m.observe(&x).unwrap()).unwrap();
        let n = 50.0;
        let (shrink, ridge) = (n / (n + 5.0) * n / (n - 1.0), 1e-3 * 5.0 / (n + 5.0));
        let want = [a * a * shrink + ridge, a * b * shrink, a * b * shrink, b * b * shrink + ridge];
        for (got, want) in metric.values().iter().zip(want) {
            assert!((got - want).abs() < 1e-12, "{metric:?}");
        }
        let mut back = MassAdaptation::new(2, MetricKind::Dense);
        back.set_state(&m.state()).unwrap();
        assert_eq!(back.state(), m.state());
        assert!(back.set_state(&m.state()[1..]).is_err());
    }
}
