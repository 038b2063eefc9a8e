//! The `hmc` kernel: one Hamiltonian trajectory per chain per step, all chains integrated as one
//! batch, accepted with `min(1, exp(H_0 - H_1))`. A proposal with a non-finite energy is a
//! divergence: rejected and counted, never an error.

use bootflow_core::check_dim;
use bootflow_core::parse_config;
use bootflow_core::rng::fill_normal;
use bootflow_core::{Batch, ChainState, Error, Kernel, LogDensity, Result, Rng, StepStats};
use rand::Rng as _;
use serde::Deserialize;
use serde_json::Value;

use crate::adapt::{AdaptMode, STATE_LEN, StepSize};
use crate::leapfrog::{Phase, integrate};
use crate::mass::MassAdaptation;
use crate::metric::{Metric, MetricKind};

/// An energy error above this also counts as a divergence (the proposal is then rejected with
/// probability 1 - e^-1000 anyway).
const DIVERGENCE_ENERGY: f64 = 1000.0;

/// Configuration keys of `hmc`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HmcConfig {
    /// Leapfrog steps per trajectory.
    pub n_leapfrog: usize,
    /// Initial (or fixed) leapfrog step size.
    pub step_size: f64,
    /// Each trajectory uses a step drawn uniformly from `[(1 - jitter) eps, (1 + jitter) eps]`,
    /// one draw per chain, so that trajectory lengths do not resonate with the target's modes.
    pub jitter: f64,
    /// Mean acceptance probability the adaptation aims at.
    pub target_accept: f64,
    /// `dual-averaging` (warm-up of a sampler) or `simple` (AIS during training).
    pub adapt: AdaptMode,
    /// Multiplier of the `simple` rule.
    pub adapt_factor: f64,
    /// Whether warm-up adapts the mass matrix in Stan's windows (as `nuts` does); needs
    /// `adapt = "dual-averaging"`.
    pub adapt_mass: bool,
    /// `diag` or `dense`: the mass matrix's shape.
    pub metric: MetricKind,
    /// Diagonal of the (starting) mass matrix (identity when absent).
    pub mass: Option<Vec<f64>>,
}

impl Default for HmcConfig {
    fn default() -> Self {
        Self {
            n_leapfrog: 10,
            step_size: 0.1,
            jitter: 0.0,
            target_accept: 0.8,
            adapt: AdaptMode::DualAveraging,
            adapt_factor: 1.05,
            adapt_mass: false,
            metric: MetricKind::Diag,
            mass: None,
        }
    }
}

/// Most leapfrog steps per transition: 1023, the longest trajectory of Stan's NUTS at its default
/// maximum tree depth of 10.
pub const MAX_LEAPFROG: usize = 1023;

/// Batched Hamiltonian Monte Carlo with an adaptable step size.
#[derive(Clone, Debug)]
pub struct Hmc {
    config: HmcConfig,
    metric: Metric,
    mass_adapt: MassAdaptation,
    step: StepSize,
    adapt: bool,
    divergences: f64,
}

/// Length of [`Kernel::state`] without mass adaptation: the step-size state, the adaptation
/// switch and the divergence count (with it, the metric and the adaptation's state follow).
pub const HMC_STATE_LEN: usize = STATE_LEN + 2;

impl Hmc {
    /// An `hmc` kernel for `dim`-dimensional densities.
    ///
    /// [`MAX_LEAPFROG`] bounds the work of one transition.
    pub fn new(dim: usize, config: HmcConfig) -> Result<Self> {
        let bad = |what: &str| Err(Error::Config(format!("hmc: {what}")));
        if config.n_leapfrog == 0 {
            return bad("n_leapfrog must be at least 1, got 0");
        }
        if config.n_leapfrog > MAX_LEAPFROG {
            return bad(&format!(
                "n_leapfrog must be at most {MAX_LEAPFROG} (Stan's deepest NUTS tree; longer trajectories only cost time), got {}",
                config.n_leapfrog
            ));
        }
        if !(config.step_size > 0.0 && config.step_size.is_finite()) {
            return bad(&format!("step_size must be positive and finite, got {}", config.step_size));
        }
        if !(0.0..1.0).contains(&config.jitter) {
            return bad(&format!("jitter must be in [0, 1), got {}", config.jitter));
        }
        if !(0.0 < config.target_accept && config.target_accept < 1.0) {
            return bad(&format!("target_accept must be in (0, 1), got {}", config.target_accept));
        }
        if !(config.adapt_factor > 1.0 && config.adapt_factor.is_finite()) {
            return bad(&format!("adapt_factor must be > 1, got {}", config.adapt_factor));
        }
        let mass = config.mass.clone().unwrap_or_else(|| vec![1.0; dim]);
        check_dim("hmc mass length", mass.len(), dim)?;
        if mass.iter().any(|m| !(*m > 0.0 && m.is_finite())) {
            return bad(&format!("every mass must be positive and finite, got {mass:?}"));
        }
        if config.adapt_mass && config.adapt != AdaptMode::DualAveraging {
            return bad("adapt_mass needs adapt = \"dual-averaging\"");
        }
        let step = StepSize::new(config.step_size, config.adapt, config.target_accept, config.adapt_factor);
        Ok(Self {
            metric: Metric::from_mass(config.metric, &mass)?,
            mass_adapt: MassAdaptation::new(dim, config.metric),
            config,
            step,
            adapt: false,
            divergences: 0.0,
        })
    }

    pub fn from_config(dim: usize, cfg: &Value) -> Result<Self> {
        Self::new(dim, parse_config("hmc kernel", cfg)?)
    }

    /// The current (unjittered) step size.
    pub fn step_size(&self) -> f64 {
        self.step.eps()
    }

    /// The current inverse mass matrix.
    pub fn metric(&self) -> &Metric {
        &self.metric
    }

    /// Divergent trajectories since construction (or the restored state).
    pub fn divergences(&self) -> u64 {
        self.divergences as u64
    }

    /// Per-chain step sizes of one trajectory.
    fn draw_steps(&self, n: usize, rng: &mut Rng) -> Vec<f64> {
        let eps = self.step.eps();
        let j = self.config.jitter;
        if j == 0.0 {
            return vec![eps; n];
        }
        (0..n).map(|_| eps * (1.0 + j * (2.0 * rng.random::<f64>() - 1.0))).collect()
    }
}

impl Kernel for Hmc {
    fn needs_grad(&self) -> bool {
        true
    }

    fn step(&mut self, density: &dyn LogDensity, state: &mut ChainState, rng: &mut Rng) -> Result<StepStats> {
        let (d, n) = state.x.shape();
        check_dim("hmc dimension", d, self.mass_adapt.dim())?;
        let grad = state.grad.as_ref().ok_or_else(|| {
            Error::Other("hmc needs the gradient cached in the chain state (ChainState::new with_grad)".into())
        })?;
        check_dim("hmc cached gradient rows", grad.nrows(), d)?;
        check_dim("hmc cached gradient columns", grad.ncols(), n)?;
        check_dim("hmc cached log-density length", state.log_p.len(), n)?;
        let mut p = Batch::zeros(d, n);
        fill_normal(rng, p.as_mut_slice());
        for mut c in p.column_iter_mut() {
            self.metric.momentum(c.as_mut_slice());
        }
        let eps = self.draw_steps(n, rng);
        let mut ph = Phase { x: state.x.clone(), p, log_p: state.log_p.clone(), grad: grad.clone() };
        let h0: Vec<f64> = (0..n).map(|j| ph.energy(j, &self.metric)).collect();
        let mut alive = vec![true; n];
        integrate(density, &mut ph, &eps, &self.metric, self.config.n_leapfrog, &mut alive)?;

        let mut stats = StepStats { accept_prob: vec![0.0; n], accepted: vec![false; n] };
        let state_grad = state.grad.as_mut().ok_or_else(|| Error::Other("hmc: gradient vanished".into()))?;
        for j in 0..n {
            // `f64::min` would turn a NaN ratio into 1, so dead trajectories are settled first.
            let h1 = ph.energy(j, &self.metric);
            let a = if alive[j] && h1.is_finite() { (h0[j] - h1).exp().min(1.0) } else { 0.0 };
            if !alive[j] || !h1.is_finite() || h1 - h0[j] > DIVERGENCE_ENERGY {
                self.divergences += 1.0;
            }
            stats.accept_prob[j] = a;
            if rng.random::<f64>() < a {
                state.x.set_column(j, &ph.x.column(j));
                state_grad.set_column(j, &ph.grad.column(j));
                state.log_p[j] = ph.log_p[j];
                stats.accepted[j] = true;
            }
        }
        if self.adapt {
            self.step.update(stats.mean_accept());
            if self.config.adapt_mass
                && let Some(metric) = self.mass_adapt.observe(&state.x)?
            {
                self.metric = metric;
                // As in `nuts`: the new metric's step size adapts afresh from the current one.
                self.step = StepSize::new(self.step.eps(), AdaptMode::DualAveraging, self.config.target_accept, 1.05);
                self.step.start();
            }
        }
        Ok(stats)
    }

    fn set_adapt(&mut self, on: bool) {
        self.step.switch(self.adapt, on);
        self.adapt = on;
    }

    fn tuning(&self) -> Vec<(String, f64)> {
        vec![("step_size".into(), self.step.eps()), ("divergences".into(), self.divergences)]
    }

    fn state(&self) -> Vec<f64> {
        let mut s = self.step.to_vec().to_vec();
        s.push(if self.adapt { 1.0 } else { 0.0 });
        s.push(self.divergences);
        if self.config.adapt_mass {
            s.extend(self.metric.values());
            s.extend(self.mass_adapt.state());
        }
        s
    }

    fn set_state(&mut self, s: &[f64]) -> Result<()> {
        let (d, kind) = (self.mass_adapt.dim(), self.config.metric);
        let m = Metric::values_len(kind, d);
        let adapted = if self.config.adapt_mass { m + MassAdaptation::state_len(kind, d) } else { 0 };
        check_dim("hmc state length", s.len(), HMC_STATE_LEN + adapted)?;
        if s.iter().any(|v| !v.is_finite()) {
            return Err(Error::Config(format!("hmc state must be finite, got {s:?}")));
        }
        self.step.set_from(&s[..STATE_LEN]);
        self.adapt = s[STATE_LEN] != 0.0;
        self.divergences = s[STATE_LEN + 1];
        if self.config.adapt_mass {
            self.metric = self.metric.with_values(&s[HMC_STATE_LEN..HMC_STATE_LEN + m])?;
            self.mass_adapt.set_state(&s[HMC_STATE_LEN + m..])?;
        }
        Ok(())
    }

    fn boxed_clone(&self) -> Result<Box<dyn Kernel>> {
        Ok(Box::new(self.clone()))
    }
}
