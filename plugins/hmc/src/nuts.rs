//! The `nuts` kernel: the no-U-turn sampler with multinomial sampling of the trajectory and the
//! generalised no-U-turn criterion (Hoffman & Gelman 2014; Betancourt 2017, "A Conceptual
//! Introduction to Hamiltonian Monte Carlo", appendix A; the checks across merged subtrees as in
//! Stan 2.26), a maximum tree depth, divergence detection, dual-averaging step size and windowed
//! adaptation of a diagonal or dense mass matrix (docs/metrics.md §5).
//!
//! Each chain builds its own tree (trajectory lengths differ between chains); the density is
//! evaluated one point at a time.

use bootflow_core::check_dim;
use bootflow_core::log_sum_exp;
use bootflow_core::parse_config;
use bootflow_core::rng::fill_normal;
use bootflow_core::{Batch, ChainState, Error, Kernel, LogDensity, Result, Rng, StepStats};
use rand::Rng as _;
use serde::Deserialize;
use serde_json::Value;

use crate::adapt::{AdaptMode, STATE_LEN, StepSize};
use crate::mass::MassAdaptation;
use crate::metric::{Metric, MetricKind};

/// An energy error above this ends the trajectory as a divergence (Stan's threshold).
const DIVERGENCE_ENERGY: f64 = 1000.0;
/// Deepest tree a config may ask for: 2^15 - 1 leapfrog steps per transition.
const MAX_DEPTH_LIMIT: usize = 15;

/// Configuration keys of `nuts`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NutsConfig {
    /// Initial (or fixed) leapfrog step size.
    pub step_size: f64,
    /// Most doublings of the trajectory: at most `2^max_depth - 1` leapfrog steps.
    pub max_depth: usize,
    /// Mean acceptance statistic the step-size adaptation aims at.
    pub target_accept: f64,
    /// Whether warm-up adapts the mass matrix (Stan's windows).
    pub adapt_mass: bool,
    /// `diag` or `dense`: the mass matrix's shape.
    pub metric: MetricKind,
    /// Diagonal of the starting mass matrix (identity when absent).
    pub mass: Option<Vec<f64>>,
}

impl Default for NutsConfig {
    fn default() -> Self {
        Self {
            step_size: 0.1,
            max_depth: 10,
            target_accept: 0.8,
            adapt_mass: true,
            metric: MetricKind::Diag,
            mass: None,
        }
    }
}

/// A point of phase space with its log-density and gradient.
#[derive(Clone, Debug)]
struct Point {
    x: Vec<f64>,
    p: Vec<f64>,
    grad: Vec<f64>,
    log_p: f64,
}

/// A finished subtree in trajectory order (`minus` before `plus` in time).
struct Subtree {
    minus: Point,
    plus: Point,
    sample: Point,
    /// `log sum exp(-H + H0)` over its points.
    log_w: f64,
    /// Sum of its momenta.
    rho: Vec<f64>,
    /// Leapfrog steps taken (an abandoned subtree's included).
    n_leapfrog: usize,
    /// Sum over those steps of `min(1, exp(H0 - H))`.
    sum_accept: f64,
    /// A divergence inside it.
    diverged: bool,
    /// A U-turn inside it.
    turned: bool,
}

/// The no-U-turn sampler with an adaptable step size and mass matrix.
#[derive(Clone, Debug)]
pub struct Nuts {
    config: NutsConfig,
    metric: Metric,
    step: StepSize,
    mass_adapt: MassAdaptation,
    adapt: bool,
    divergences: f64,
    transitions: f64,
    leapfrogs: f64,
}

impl Nuts {
    /// A `nuts` kernel for `dim`-dimensional densities.
    pub fn new(dim: usize, config: NutsConfig) -> Result<Self> {
        let bad = |what: String| Err(Error::Config(format!("nuts: {what}")));
        if !(config.step_size > 0.0 && config.step_size.is_finite()) {
            return bad(format!("step_size must be positive and finite, got {}", config.step_size));
        }
        if !(1..=MAX_DEPTH_LIMIT).contains(&config.max_depth) {
            return bad(format!("max_depth must be in 1..={MAX_DEPTH_LIMIT}, got {}", config.max_depth));
        }
        if !(0.0 < config.target_accept && config.target_accept < 1.0) {
            return bad(format!("target_accept must be in (0, 1), got {}", config.target_accept));
        }
        let mass = config.mass.clone().unwrap_or_else(|| vec![1.0; dim]);
        check_dim("nuts mass length", mass.len(), dim)?;
        if mass.iter().any(|m| !(*m > 0.0 && m.is_finite())) {
            return bad(format!("every mass must be positive and finite, got {mass:?}"));
        }
        let step = StepSize::new(config.step_size, AdaptMode::DualAveraging, config.target_accept, 1.05);
        Ok(Self {
            metric: Metric::from_mass(config.metric, &mass)?,
            mass_adapt: MassAdaptation::new(dim, config.metric),
            config,
            step,
            adapt: false,
            divergences: 0.0,
            transitions: 0.0,
            leapfrogs: 0.0,
        })
    }

    pub fn from_config(dim: usize, cfg: &Value) -> Result<Self> {
        Self::new(dim, parse_config("nuts kernel", cfg)?)
    }

    /// Divergent transitions since construction (or the restored state).
    pub fn divergences(&self) -> u64 {
        self.divergences as u64
    }

    /// The current inverse mass matrix (the adapted variances or covariance).
    pub fn metric(&self) -> &Metric {
        &self.metric
    }

    fn energy(&self, pt: &Point) -> f64 {
        -pt.log_p + 0.5 * self.metric.kinetic2(pt.p.iter())
    }

    fn p_sharp(&self, p: &[f64]) -> Vec<f64> {
        self.metric.velocity(p)
    }

    /// Generalised no-U-turn criterion: the trajectory keeps going while `rho` points forward at
    /// both ends.
    fn no_turn(&self, minus: &[f64], plus: &[f64], rho: &[f64]) -> bool {
        let dot = |p: &[f64]| self.p_sharp(p).iter().zip(rho).map(|(a, b)| a * b).sum::<f64>();
        dot(minus) > 0.0 && dot(plus) > 0.0
    }

    /// One leapfrog step of size `eps` (negative: backwards in time).
    fn leapfrog(&self, density: &dyn LogDensity, pt: &Point, eps: f64) -> Result<Point> {
        let d = pt.x.len();
        let p_half: Vec<f64> = pt.p.iter().zip(&pt.grad).map(|(p, g)| p + 0.5 * eps * g).collect();
        let mut x = pt.x.clone();
        self.metric.drift(x.iter_mut(), &p_half, eps);
        let xb = Batch::from_column_slice(d, 1, &x);
        let (mut log_p, mut grad) = ([0.0], Batch::zeros(d, 1));
        density.eval(&xb, &mut log_p, Some(&mut grad))?;
        let grad = grad.as_slice().to_vec();
        let p = p_half.iter().zip(&grad).map(|(p, g)| p + 0.5 * eps * g).collect();
        Ok(Point { x, p, grad, log_p: log_p[0] })
    }

    /// A subtree of `2^depth` leapfrog steps from `edge` in direction `dir`, sampled uniformly
    /// (multinomially) within; stops early at a divergence or U-turn in any of its subtrees.
    fn build(
        &self,
        density: &dyn LogDensity,
        edge: &Point,
        dir: f64,
        depth: usize,
        h0: f64,
        rng: &mut Rng,
    ) -> Result<Subtree> {
        if depth == 0 {
            let pt = self.leapfrog(density, edge, dir * self.step.eps())?;
            let h = self.energy(&pt);
            let finite = h.is_finite() && pt.grad.iter().all(|g| g.is_finite());
            let diverged = !finite || h - h0 > DIVERGENCE_ENERGY;
            let sum_accept = if finite { (h0 - h).exp().min(1.0) } else { 0.0 };
            return Ok(Subtree {
                rho: pt.p.clone(),
                minus: pt.clone(),
                plus: pt.clone(),
                sample: pt,
                log_w: if finite { h0 - h } else { f64::NEG_INFINITY },
                n_leapfrog: 1,
                sum_accept,
                diverged,
                turned: false,
            });
        }
        let first = self.build(density, edge, dir, depth - 1, h0, rng)?;
        if first.diverged || first.turned {
            return Ok(first);
        }
        let far = if dir > 0.0 { &first.plus } else { &first.minus };
        let second = self.build(density, far, dir, depth - 1, h0, rng)?;
        let (n_leapfrog, sum_accept) = (first.n_leapfrog + second.n_leapfrog, first.sum_accept + second.sum_accept);
        if second.diverged || second.turned {
            return Ok(Subtree { n_leapfrog, sum_accept, ..second });
        }
        let log_w = log_sum_exp(&[first.log_w, second.log_w]);
        let take_second = rng.random::<f64>() < (second.log_w - log_w).exp();
        let (left, right) = if dir > 0.0 { (first, second) } else { (second, first) };
        let mut merged = self.merge(left, right, log_w);
        let plus_sample = merged.plus_sample.take().expect("set by merge");
        if take_second == (dir > 0.0) {
            merged.tree.sample = plus_sample;
        }
        Ok(Subtree { n_leapfrog, sum_accept, ..merged.tree })
    }

    /// Joins two adjacent subtrees (`left` earlier in time): momenta summed, the U-turn checked
    /// over the whole and across the seam (Stan's extra checks). The sample is `left`'s, with
    /// `right`'s kept aside for the caller's choice.
    fn merge(&self, left: Subtree, right: Subtree, log_w: f64) -> Merged {
        let rho: Vec<f64> = left.rho.iter().zip(&right.rho).map(|(a, b)| a + b).collect();
        let rho_left_ext: Vec<f64> = left.rho.iter().zip(&right.minus.p).map(|(a, b)| a + b).collect();
        let rho_right_ext: Vec<f64> = right.rho.iter().zip(&left.plus.p).map(|(a, b)| a + b).collect();
        let persist = self.no_turn(&left.minus.p, &right.plus.p, &rho)
            && self.no_turn(&left.minus.p, &right.minus.p, &rho_left_ext)
            && self.no_turn(&left.plus.p, &right.plus.p, &rho_right_ext);
        Merged {
            tree: Subtree {
                minus: left.minus,
                plus: right.plus,
                sample: left.sample,
                log_w,
                rho,
                n_leapfrog: 0,
                sum_accept: 0.0,
                diverged: false,
                turned: !persist,
            },
            plus_sample: Some(right.sample),
        }
    }

    /// One NUTS transition of one chain from `x0`: the new point, its acceptance statistic,
    /// whether it diverged, and the leapfrog steps taken.
    fn transition(&self, density: &dyn LogDensity, x0: Point, rng: &mut Rng) -> Result<(Point, f64, bool, usize)> {
        let h0 = self.energy(&x0);
        let mut tree = Subtree {
            rho: x0.p.clone(),
            minus: x0.clone(),
            plus: x0.clone(),
            sample: x0,
            log_w: 0.0,
            n_leapfrog: 0,
            sum_accept: 0.0,
            diverged: false,
            turned: false,
        };
        let (mut n_leapfrog, mut sum_accept, mut diverged) = (0, 0.0, false);
        for depth in 0..self.config.max_depth {
            let dir = if rng.random::<bool>() { 1.0 } else { -1.0 };
            let edge = if dir > 0.0 { &tree.plus } else { &tree.minus };
            let sub = self.build(density, edge, dir, depth, h0, rng)?;
            n_leapfrog += sub.n_leapfrog;
            sum_accept += sub.sum_accept;
            if sub.diverged {
                diverged = true;
                break;
            }
            if sub.turned {
                break;
            }
            // Biased progressive sampling: the new subtree's sample replaces the current one
            // with probability min(1, w_new / w_old).
            let take_new = rng.random::<f64>() < (sub.log_w - tree.log_w).exp();
            let log_w = log_sum_exp(&[tree.log_w, sub.log_w]);
            let (left, right) = if dir > 0.0 { (tree, sub) } else { (sub, tree) };
            let mut merged = self.merge(left, right, log_w);
            // After merge the sample is the left subtree's; the new subtree is the left one
            // when moving backwards.
            let new_is_left = dir < 0.0;
            let plus_sample = merged.plus_sample.take().expect("set by merge");
            if take_new != new_is_left {
                merged.tree.sample = plus_sample;
            }
            tree = merged.tree;
            if tree.turned {
                break;
            }
        }
        let accept = if n_leapfrog > 0 { sum_accept / n_leapfrog as f64 } else { 0.0 };
        Ok((tree.sample, accept, diverged, n_leapfrog))
    }
}

/// A merged tree and the right subtree's sample.
struct Merged {
    tree: Subtree,
    plus_sample: Option<Point>,
}

impl Kernel for Nuts {
    fn needs_grad(&self) -> bool {
        true
    }

    fn step(&mut self, density: &dyn LogDensity, state: &mut ChainState, rng: &mut Rng) -> Result<StepStats> {
        let (d, n) = state.x.shape();
        check_dim("nuts dimension", d, self.mass_adapt.dim())?;
        let grad = state.grad.as_ref().ok_or_else(|| {
            Error::Other("nuts needs the gradient cached in the chain state (ChainState::new with_grad)".into())
        })?;
        check_dim("nuts cached gradient columns", grad.ncols(), n)?;
        let mut p = Batch::zeros(d, n);
        fill_normal(rng, p.as_mut_slice());
        let mut stats = StepStats { accept_prob: vec![0.0; n], accepted: vec![false; n] };
        let mut moved = Vec::with_capacity(n);
        for mut c in p.column_iter_mut() {
            self.metric.momentum(c.as_mut_slice());
        }
        for j in 0..n {
            let start = Point {
                x: state.x.column(j).iter().copied().collect(),
                p: p.column(j).iter().copied().collect(),
                grad: grad.column(j).iter().copied().collect(),
                log_p: state.log_p[j],
            };
            let (pt, accept, diverged, n_leapfrog) = self.transition(density, start, rng)?;
            stats.accept_prob[j] = accept;
            stats.accepted[j] = pt.x.as_slice() != state.x.column(j).as_slice();
            self.divergences += f64::from(u8::from(diverged));
            self.leapfrogs += n_leapfrog as f64;
            moved.push(pt);
        }
        self.transitions += n as f64;
        let state_grad = state.grad.as_mut().ok_or_else(|| Error::Other("nuts: gradient vanished".into()))?;
        for (j, pt) in moved.into_iter().enumerate() {
            state.x.column_mut(j).copy_from_slice(&pt.x);
            state_grad.column_mut(j).copy_from_slice(&pt.grad);
            state.log_p[j] = pt.log_p;
        }
        if self.adapt {
            self.step.update(stats.mean_accept());
            if self.config.adapt_mass
                && let Some(metric) = self.mass_adapt.observe(&state.x)?
            {
                self.metric = metric;
                // A new metric needs its own step size: dual averaging restarts from the current one.
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
        let mean_leapfrog = if self.transitions > 0.0 { self.leapfrogs / self.transitions } else { 0.0 };
        vec![
            ("step_size".into(), self.step.eps()),
            ("divergences".into(), self.divergences),
            ("mean_leapfrog".into(), mean_leapfrog),
        ]
    }

    fn state(&self) -> Vec<f64> {
        let mut s = self.step.to_vec().to_vec();
        s.extend([f64::from(u8::from(self.adapt)), self.divergences, self.transitions, self.leapfrogs]);
        s.extend(self.metric.values());
        s.extend(self.mass_adapt.state());
        s
    }

    fn set_state(&mut self, s: &[f64]) -> Result<()> {
        let (d, kind) = (self.mass_adapt.dim(), self.config.metric);
        let m = Metric::values_len(kind, d);
        check_dim("nuts state length", s.len(), STATE_LEN + 4 + m + MassAdaptation::state_len(kind, d))?;
        if s.iter().any(|v| !v.is_finite()) {
            return Err(Error::Config("nuts state must be finite".into()));
        }
        self.step.set_from(&s[..STATE_LEN]);
        let rest = &s[STATE_LEN..];
        self.adapt = rest[0] != 0.0;
        [self.divergences, self.transitions, self.leapfrogs] = [rest[1], rest[2], rest[3]];
        self.metric = self.metric.with_values(&rest[4..4 + m])?;
        self.mass_adapt.set_state(&rest[4 + m..])
    }

    fn boxed_clone(&self) -> Result<Box<dyn Kernel>> {
        Ok(Box::new(self.clone()))
    }
}
