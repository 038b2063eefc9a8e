//! Random-walk Metropolis: `x' = x + step * N(0, I)`, accepted with `min(1, p(x')/p(x))`.
//! During adaptation the log step size follows a Robbins–Monro recursion towards a target
//! acceptance rate.

use serde::Deserialize;
use serde_json::Value;

use crate::Batch;
use crate::error::{Error, Result};
use crate::model::kernel::{ChainState, Kernel, StepStats};
use crate::model::target::LogDensity;
use crate::registry::parse_config;
use crate::rng::{Rng, fill_normal};

/// Configuration keys of `rwm`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RandomWalkConfig {
    /// Initial standard deviation of the Gaussian proposal `x' = x + step_size * N(0, I)`; must be > 0.
    pub step_size: f64,
    /// Mean acceptance probability that adaptation steers the step size towards; in (0, 1).
    pub target_accept: f64,
}

impl Default for RandomWalkConfig {
    fn default() -> Self {
        Self { step_size: 0.5, target_accept: 0.234 }
    }
}

/// Batched random-walk Metropolis kernel.
#[derive(Clone, Debug)]
pub struct RandomWalk {
    config: RandomWalkConfig,
    log_step: f64,
    adapt: bool,
    adapt_steps: f64,
}

impl RandomWalk {
    /// A kernel with the given config; fails unless `step_size > 0` and `0 < target_accept < 1`.
    pub fn new(config: RandomWalkConfig) -> Result<Self> {
        if !(config.step_size > 0.0 && config.step_size.is_finite()) {
            return Err(Error::Config(format!("rwm: step_size must be positive and finite, got {}", config.step_size)));
        }
        if !(0.0 < config.target_accept && config.target_accept < 1.0) {
            return Err(Error::Config(format!("rwm: target_accept must be in (0, 1), got {}", config.target_accept)));
        }
        Ok(Self { log_step: config.step_size.ln(), config, adapt: false, adapt_steps: 0.0 })
    }

    /// The registry's `rwm` factory: `cfg` holds the [`RandomWalkConfig`] keys; the dimension is unused.
    pub fn from_config(_dim: usize, cfg: &Value) -> Result<Self> {
        Self::new(parse_config("rwm kernel", cfg)?)
    }

    /// Current proposal standard deviation (adapted while adaptation is on).
    pub fn step_size(&self) -> f64 {
        self.log_step.exp()
    }
}

impl Kernel for RandomWalk {
    fn needs_grad(&self) -> bool {
        false
    }

    fn step(&mut self, density: &dyn LogDensity, state: &mut ChainState, rng: &mut Rng) -> Result<StepStats> {
        let (d, n) = state.x.shape();
        let mut prop = Batch::zeros(d, n);
        fill_normal(rng, prop.as_mut_slice());
        prop *= self.step_size();
        prop += &state.x;
        let mut lp = vec![0.0; n];
        density.eval(&prop, &mut lp, None)?;
        let mut stats = StepStats { accept_prob: vec![0.0; n], accepted: vec![false; n] };
        for (j, &lp_j) in lp.iter().enumerate() {
            // NaN and -inf proposals are never taken (f64::min would turn a NaN ratio into 1).
            let a =
                if lp_j.is_nan() || lp_j == f64::NEG_INFINITY { 0.0 } else { (lp_j - state.log_p[j]).exp().min(1.0) };
            let u: f64 = rand::Rng::random(rng);
            stats.accept_prob[j] = a;
            if u < stats.accept_prob[j] {
                state.x.set_column(j, &prop.column(j));
                state.log_p[j] = lp_j;
                stats.accepted[j] = true;
            }
        }
        if self.adapt {
            self.adapt_steps += 1.0;
            self.log_step += (stats.mean_accept() - self.config.target_accept) / (self.adapt_steps + 10.0).powf(0.6);
        }
        Ok(stats)
    }

    fn set_adapt(&mut self, on: bool) {
        self.adapt = on;
    }

    fn tuning(&self) -> Vec<(String, f64)> {
        vec![("step_size".into(), self.step_size())]
    }

    fn state(&self) -> Vec<f64> {
        vec![self.log_step, self.adapt_steps]
    }

    fn set_state(&mut self, s: &[f64]) -> Result<()> {
        crate::error::check_dim("rwm state length", s.len(), 2)?;
        self.log_step = s[0];
        self.adapt_steps = s[1];
        Ok(())
    }

    fn boxed_clone(&self) -> Result<Box<dyn Kernel>> {
        Ok(Box::new(self.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Standard normal in d dimensions.
    struct StdNormal(usize);
    impl LogDensity for StdNormal {
        fn dim(&self) -> usize {
            self.0
        }
        fn eval(&self, x: &Batch, out: &mut [f64], _g: Option<&mut Batch>) -> Result<()> {
            for (o, c) in out.iter_mut().zip(x.column_iter()) {
                *o = -0.5 * c.norm_squared();
            }
            Ok(())
        }
    }

    #[test]
    fn adapts_to_target_acceptance_and_samples_the_normal() {
        let mut k = RandomWalk::new(RandomWalkConfig { step_size: 5.0, target_accept: 0.3 }).unwrap();
        let dens = StdNormal(2);
        let mut rng = crate::rng::stream(3, 0);
        let mut st = ChainState::new(&dens, Batch::zeros(2, 200), false).unwrap();
        k.set_adapt(true);
        for _ in 0..400 {
            k.step(&dens, &mut st, &mut rng).unwrap();
        }
        k.set_adapt(false);
        let (mut acc, mut m2, mut cnt) = (0.0, 0.0, 0.0);
        for _ in 0..400 {
            acc += k.step(&dens, &mut st, &mut rng).unwrap().mean_accept();
            m2 += st.x.norm_squared();
            cnt += 400.0;
        }
        acc /= 400.0;
        // E[x_i^2] = 1. 80,000 coordinate draws with tau_int ~ 5 give a standard error of about
        // sqrt(2 * 2 * 5 / 80000) = 0.016; 0.08 is five of those.
        assert!((acc - 0.3).abs() < 0.03, "acceptance {acc}");
        assert!((m2 / cnt - 1.0).abs() < 0.08, "second moment {}", m2 / cnt);
    }
}
