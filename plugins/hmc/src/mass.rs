//! Windowed adaptation of a diagonal mass matrix during warm-up, after Stan: an initial buffer
//! of 75 adaptation steps lets the chains find the typical set, then windows of 25, 50, 100, ...
//! steps each collect every chain's positions; at a window's end the inverse mass matrix becomes
//! their regularised variance, `(n / (n + 5)) var + 1e-3 (5 / (n + 5))`, and the step size
//! adapts afresh. Warm-up may end inside a window: its positions are then unused, and the step
//! size has been adapting to the last metric since that metric was set. (The kernel does not
//! know the warm-up length, so there is no closing fast window as in Stan.)

use bootflow_core::{Batch, Error, Result};

/// Adaptation steps before the first window.
const INIT_BUFFER: f64 = 75.0;
/// Length of the first window.
const FIRST_WINDOW: f64 = 25.0;

/// The window schedule and the running moments of the current window.
#[derive(Clone, Debug)]
pub struct MassAdaptation {
    /// Adaptation steps seen.
    t: f64,
    /// Step at which the current window ends.
    window_end: f64,
    /// Length of the current window.
    window: f64,
    /// Positions collected in the window, and their running mean and sum of squared deviations.
    count: f64,
    mean: Vec<f64>,
    m2: Vec<f64>,
}

impl MassAdaptation {
    pub fn new(dim: usize) -> Self {
        Self {
            t: 0.0,
            window_end: INIT_BUFFER + FIRST_WINDOW,
            window: FIRST_WINDOW,
            count: 0.0,
            mean: vec![0.0; dim],
            m2: vec![0.0; dim],
        }
    }

    /// Records one adaptation step's positions (`dim x chains`); at a window's end returns the
    /// new inverse mass matrix diagonal.
    pub fn observe(&mut self, x: &Batch) -> Option<Vec<f64>> {
        self.t += 1.0;
        if self.t <= INIT_BUFFER {
            return None;
        }
        for c in x.column_iter() {
            self.count += 1.0;
            for ((m, s), v) in self.mean.iter_mut().zip(self.m2.iter_mut()).zip(c.iter()) {
                let d = v - *m;
                *m += d / self.count;
                *s += d * (v - *m);
            }
        }
        if self.t < self.window_end {
            return None;
        }
        let n = self.count;
        let var: Vec<f64> =
            self.m2.iter().map(|s| (n / (n + 5.0)) * (s / (n - 1.0).max(1.0)) + 1e-3 * (5.0 / (n + 5.0))).collect();
        self.window *= 2.0;
        self.window_end = self.t + self.window;
        self.count = 0.0;
        self.mean.iter_mut().chain(self.m2.iter_mut()).for_each(|v| *v = 0.0);
        Some(var)
    }

    /// Length of [`MassAdaptation::state`] for `dim` coordinates.
    pub fn state_len(dim: usize) -> usize {
        4 + 2 * dim
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
        if s.len() != Self::state_len(d) {
            return Err(Error::Config(format!("nuts mass adaptation state: {} values for dimension {d}", s.len())));
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
        let mut m = MassAdaptation::new(1);
        // Two chains at +-2: variance (n-1 denominator) of 2n values alternating +-2.
        let x = Batch::from_column_slice(1, 2, &[2.0, -2.0]);
        let ends: Vec<usize> = (1..=400).filter(|_| m.observe(&x).is_some()).collect();
        assert_eq!(ends, [100, 150, 250]);
        let mut m = MassAdaptation::new(1);
        let var = (1..=100).filter_map(|_| m.observe(&x)).next().unwrap();
        let n = 50.0;
        let sample_var = 4.0 * n / (n - 1.0);
        assert!((var[0] - ((n / (n + 5.0)) * sample_var + 1e-3 * 5.0 / (n + 5.0))).abs() < 1e-12, "{var:?}");
        let mut back = MassAdaptation::new(1);
        back.set_state(&m.state()).unwrap();
        assert_eq!(back.state(), m.state());
    }
}
