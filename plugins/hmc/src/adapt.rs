//! Step-size adaptation towards a target mean acceptance probability.
//!
//! - Dual averaging (Hoffman & Gelman 2014, Algorithm 5): with `t` adaptation steps so far,
//!   `h_t = (1 - 1/(t + t0)) h_{t-1} + (delta - alpha_t)/(t + t0)`,
//!   `log eps_t = mu - sqrt(t)/gamma h_t`, `log eps_bar_t = t^-kappa log eps_t + (1 - t^-kappa) log eps_bar_{t-1}`,
//!   `mu = ln(10 eps_0)`; when adaptation stops the step freezes at `eps_bar`.
//! - Simple: multiply the step by `factor` when the mean acceptance is above target, divide it
//!   otherwise. It never settles, which suits AIS inside training where the flow keeps changing.

use serde::Deserialize;

const GAMMA: f64 = 0.05;
const T0: f64 = 10.0;
const KAPPA: f64 = 0.75;

/// Which adaptation rule runs while adaptation is switched on.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum AdaptMode {
    #[default]
    DualAveraging,
    Simple,
}

/// The adapted step size and the counters of the rule.
#[derive(Clone, Debug, PartialEq)]
pub struct StepSize {
    pub mode: AdaptMode,
    pub target: f64,
    pub factor: f64,
    pub log_eps: f64,
    pub log_eps_bar: f64,
    pub h_bar: f64,
    pub t: f64,
    pub mu: f64,
}

/// Number of values in [`StepSize::to_vec`].
pub const STATE_LEN: usize = 5;

impl StepSize {
    pub fn new(eps0: f64, mode: AdaptMode, target: f64, factor: f64) -> Self {
        Self { mode, target, factor, log_eps: eps0.ln(), log_eps_bar: 0.0, h_bar: 0.0, t: 0.0, mu: (10.0 * eps0).ln() }
    }

    pub fn eps(&self) -> f64 {
        self.log_eps.exp()
    }

    /// Called when adaptation is switched on: dual averaging starts from the current step.
    pub fn start(&mut self) {
        if self.mode == AdaptMode::DualAveraging && self.t == 0.0 {
            self.mu = (10.0_f64).ln() + self.log_eps;
        }
    }

    /// Called when adaptation is switched off after having run: dual averaging freezes at the
    /// averaged step.
    pub fn freeze(&mut self) {
        if self.mode == AdaptMode::DualAveraging && self.t > 0.0 {
            self.log_eps = self.log_eps_bar;
        }
    }

    /// A kernel's adaptation switch going from `was` to `on`: starts or freezes the rule.
    pub fn switch(&mut self, was: bool, on: bool) {
        match (was, on) {
            (false, true) => self.start(),
            (true, false) => self.freeze(),
            _ => {}
        }
    }

    /// One adaptation step after a transition with mean acceptance probability `alpha`.
    pub fn update(&mut self, alpha: f64) {
        match self.mode {
            AdaptMode::DualAveraging => {
                self.t += 1.0;
                let w = 1.0 / (self.t + T0);
                self.h_bar = (1.0 - w) * self.h_bar + w * (self.target - alpha);
                self.log_eps = self.mu - self.t.sqrt() / GAMMA * self.h_bar;
                let eta = self.t.powf(-KAPPA);
                self.log_eps_bar = eta * self.log_eps + (1.0 - eta) * self.log_eps_bar;
            }
            AdaptMode::Simple => {
                self.t += 1.0;
                let step = self.factor.ln();
                self.log_eps += if alpha > self.target { step } else { -step };
            }
        }
    }

    /// `[log_eps, log_eps_bar, h_bar, t, mu]`.
    pub fn to_vec(&self) -> [f64; STATE_LEN] {
        [self.log_eps, self.log_eps_bar, self.h_bar, self.t, self.mu]
    }

    pub fn set_from(&mut self, s: &[f64]) {
        [self.log_eps, self.log_eps_bar, self.h_bar, self.t, self.mu] = [s[0], s[1], s[2], s[3], s[4]];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// With acceptance `exp(-eps)` (a smooth decreasing function), dual averaging must find the
    /// step `-ln(0.8)` where acceptance equals the target.
    #[test]
    fn dual_averaging_finds_the_step_of_a_monotone_acceptance_curve() {
        let mut s = StepSize::new(1.0, AdaptMode::DualAveraging, 0.8, 1.05);
        s.start();
        for _ in 0..2000 {
            let a = (-s.eps()).exp();
            s.update(a);
        }
        s.freeze();
        // The averaged iterate converges slowly (weights t^-kappa); 2000 steps land within 2 %.
        assert!((s.eps() / -0.8_f64.ln() - 1.0).abs() < 0.02, "eps {}", s.eps());
    }

    #[test]
    fn simple_rule_moves_by_the_factor() {
        let mut s = StepSize::new(0.1, AdaptMode::Simple, 0.65, 1.1);
        s.update(0.9);
        assert!((s.eps() - 0.11).abs() < 1e-12);
        s.update(0.1);
        s.update(0.1);
        assert!((s.eps() - 0.1 / 1.1).abs() < 1e-12);
        s.freeze();
        assert!((s.eps() - 0.1 / 1.1).abs() < 1e-12, "simple mode keeps its last step");
    }

    #[test]
    fn freezing_an_unadapted_step_keeps_it() {
        let mut s = StepSize::new(0.3, AdaptMode::DualAveraging, 0.8, 1.05);
        s.freeze();
        assert!((s.eps() - 0.3).abs() < 1e-15);
    }
}
