//! Annealed importance sampling on the geometric path `f_j = f_0^(1 - beta_j) f_T^beta_j` from a
//! normalised start density (usually the flow q) to an end density (p~, or p~^2/q for FAB),
//! `beta_0 = 0 < beta_1 < ... < beta_K < beta_{K+1} = 1`, one MCMC kernel per intermediate
//! distribution (so each can keep its own tuned step size).
//!
//! With `x_0 ~ f_0`: for `j = 1..K`, `log w += log f_j(x_{j-1}) - log f_{j-1}(x_{j-1})`, then
//! `x_j = T_j(x_{j-1})` with `T_j` leaving `f_j` invariant; finally
//! `log w += log f_T(x_K) - log f_K(x_K)`. Then `E[w] = Z_T / Z_0`.

use serde::{Deserialize, Serialize};

use crate::Batch;
use crate::error::{Error, Result, check_dim};
use crate::model::density::{Ends, Geometric};
use crate::model::kernel::{ChainState, Kernel};
use crate::model::target::LogDensity;
use crate::rng::Rng;

/// Spacing of the intermediate inverse temperatures.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Spacing {
    /// `beta_j = j / (K + 1)`.
    #[default]
    Linear,
    /// `beta_j = 0.001^((K + 1 - j) / (K + 1))` for `j >= 1`: more steps where the density changes fastest.
    Geometric,
}

const GEOMETRIC_MIN: f64 = 1e-3;

/// The inverse temperatures `beta_0 = 0, ..., beta_{K+1} = 1` for `k` intermediate distributions.
pub fn betas(k: usize, spacing: Spacing) -> Vec<f64> {
    let n = k + 1;
    let mut b: Vec<f64> = match spacing {
        Spacing::Linear => (0..=n).map(|j| j as f64 / n as f64).collect(),
        Spacing::Geometric => {
            std::iter::once(0.0).chain((1..=n).map(|j| GEOMETRIC_MIN.powf((n - j) as f64 / n as f64))).collect()
        }
    };
    b[n] = 1.0;
    b
}

/// Samples, log weights and per-transition statistics of one AIS run.
#[derive(Clone, Debug)]
pub struct AisOutput {
    pub x: Batch,
    pub log_w: Vec<f64>,
    /// Mean acceptance probability of each transition `j = 1..K`.
    pub acceptance: Vec<f64>,
    /// Values of the end density at the returned samples.
    pub log_end: Vec<f64>,
}

/// AIS with one kernel per intermediate distribution.
pub struct Annealer {
    kernels: Vec<Box<dyn Kernel>>,
    betas: Vec<f64>,
}

impl Annealer {
    /// `k` intermediate distributions, each with its own copy of `kernel`.
    pub fn new(kernel: &dyn Kernel, k: usize, spacing: Spacing) -> Result<Self> {
        let kernels = (0..k).map(|_| kernel.boxed_clone()).collect::<Result<Vec<_>>>()?;
        Ok(Self { kernels, betas: betas(k, spacing) })
    }

    /// The inverse temperatures `beta_0 = 0, ..., beta_{K+1} = 1` (length `K + 2`).
    pub fn betas(&self) -> &[f64] {
        &self.betas
    }

    /// The transitions: `kernels()[j - 1]` leaves `f_j` invariant, for `j = 1..K`.
    pub fn kernels(&self) -> &[Box<dyn Kernel>] {
        &self.kernels
    }

    /// Switches step-size adaptation of every transition on or off.
    pub fn set_adapt(&mut self, on: bool) {
        self.kernels.iter_mut().for_each(|k| k.set_adapt(on));
    }

    /// Kernel states, one per transition (for checkpoints).
    pub fn state(&self) -> Vec<Vec<f64>> {
        self.kernels.iter().map(|k| k.state()).collect()
    }

    /// Restores the states saved by [`Annealer::state`]; needs exactly one per transition.
    pub fn set_state(&mut self, state: &[Vec<f64>]) -> Result<()> {
        check_dim("AIS kernel states", state.len(), self.kernels.len())?;
        self.kernels.iter_mut().zip(state).try_for_each(|(k, s)| k.set_state(s))
    }

    /// Runs AIS from `x0 ~ f_start` (with `log f_start(x0)` given, as a flow sample provides it)
    /// towards `end`.
    pub fn run(
        &mut self,
        start: &dyn LogDensity,
        end: &dyn LogDensity,
        x0: Batch,
        log_start_x0: &[f64],
        rng: &mut Rng,
    ) -> Result<AisOutput> {
        let n = x0.ncols();
        check_dim("start log-density length", log_start_x0.len(), n)?;
        let needs_grad = self.kernels.iter().any(|k| k.needs_grad());
        let mut x = x0;
        let mut ends = if self.kernels.is_empty() {
            let mut e = vec![0.0; n];
            end.eval(&x, &mut e, None)?;
            Ends { start: log_start_x0.to_vec(), end: e, start_grad: None, end_grad: None }
        } else {
            Ends::eval(start, end, &x, needs_grad)?
        };
        let mut log_w = vec![0.0; n];
        let n_kernels = self.kernels.len();
        let mut acceptance = Vec::with_capacity(n_kernels);
        for (j, kernel) in self.kernels.iter_mut().enumerate() {
            let (b_prev, b) = (self.betas[j], self.betas[j + 1]);
            accumulate(&mut log_w, &ends.mix(b), &ends.mix(b_prev));
            let mut state = ChainState { x, log_p: ends.mix(b), grad: ends.mix_grad(b) };
            let density = Geometric { start, end, beta: b };
            let stats = kernel.step(&density, &mut state, rng)?;
            acceptance.push(stats.mean_accept());
            x = state.x;
            // After the last transition only the values enter the weights.
            let last = j + 1 == n_kernels;
            ends = Ends::eval(start, end, &x, needs_grad && !last)?;
        }
        let b_last = self.betas[self.kernels.len()];
        accumulate(&mut log_w, &ends.end, &ends.mix(b_last));
        if let Some(i) = log_w.iter().position(|v| v.is_nan()) {
            return Err(Error::NonFinite(format!("AIS log weight of sample {i}")));
        }
        Ok(AisOutput { x, log_w, acceptance, log_end: ends.end })
    }
}

/// `log_w += new - old`, treating `-inf - -inf` (a point outside both supports) as weight zero.
fn accumulate(log_w: &mut [f64], new: &[f64], old: &[f64]) {
    for ((w, a), b) in log_w.iter_mut().zip(new).zip(old) {
        *w += if *a == f64::NEG_INFINITY { f64::NEG_INFINITY } else { a - b };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcmc::rwm::{RandomWalk, RandomWalkConfig};
    use crate::rng::fill_normal;

    const LN_2PI: f64 = 1.837_877_066_409_345_3;

    /// Normalised isotropic Gaussian N(0, s^2 I) in 2-D.
    struct Broad(f64);
    impl LogDensity for Broad {
        fn dim(&self) -> usize {
            2
        }
        fn eval(&self, x: &Batch, out: &mut [f64], _g: Option<&mut Batch>) -> Result<()> {
            for (o, c) in out.iter_mut().zip(x.column_iter()) {
                *o = -0.5 * c.norm_squared() / (self.0 * self.0) - LN_2PI - 2.0 * self.0.ln();
            }
            Ok(())
        }
    }

    /// Normalised mixture of three unit-variance Gaussians in 2-D.
    struct Mixture;
    const MEANS: [[f64; 2]; 3] = [[-4.0, 0.0], [3.0, 3.0], [2.0, -5.0]];
    const WEIGHTS: [f64; 3] = [0.5, 0.3, 0.2];
    impl LogDensity for Mixture {
        fn dim(&self) -> usize {
            2
        }
        fn eval(&self, x: &Batch, out: &mut [f64], _g: Option<&mut Batch>) -> Result<()> {
            for (o, c) in out.iter_mut().zip(x.column_iter()) {
                let p: f64 = MEANS
                    .iter()
                    .zip(WEIGHTS)
                    .map(|(m, w)| w * (-0.5 * ((c[0] - m[0]).powi(2) + (c[1] - m[1]).powi(2)) - LN_2PI).exp())
                    .sum();
                *o = p.ln();
            }
            Ok(())
        }
    }

    fn lse(v: &[f64]) -> f64 {
        let m = v.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        m + v.iter().map(|a| (a - m).exp()).sum::<f64>().ln()
    }

    /// Log Z estimate, its delta-method standard error and the Kish ESS of `k`-step AIS.
    fn anneal(k: usize, seed: u64) -> (f64, f64, f64) {
        let n = 4000;
        let mut rng = crate::rng::stream(seed, 0);
        let start = Broad(5.0);
        let mut x0 = Batch::zeros(2, n);
        fill_normal(&mut rng, x0.as_mut_slice());
        x0 *= 5.0;
        let mut l0 = vec![0.0; n];
        start.eval(&x0, &mut l0, None).unwrap();
        let kernel = RandomWalk::new(RandomWalkConfig { step_size: 1.0, target_accept: 0.3 }).unwrap();
        let mut ais = Annealer::new(&kernel, k, Spacing::Linear).unwrap();
        let out = ais.run(&start, &Mixture, x0, &l0, &mut rng).unwrap();
        assert_eq!(out.acceptance.len(), k);
        let log_z = lse(&out.log_w) - (n as f64).ln();
        let ess =
            (2.0 * lse(&out.log_w) - lse(&out.log_w.iter().map(|w| 2.0 * w).collect::<Vec<_>>())).exp() / n as f64;
        (log_z, ((1.0 / ess - 1.0) / n as f64).sqrt(), ess)
    }

    #[test]
    fn log_z_of_a_normalised_mixture_is_zero_within_three_standard_errors() {
        let (log_z, se, ess) = anneal(20, 11);
        assert!(log_z.abs() < 3.0 * se, "log Z {log_z} +- {se}");
        let (_, _, ess_is) = anneal(0, 11);
        assert!(ess > 2.0 * ess_is, "annealing should raise the ESS: {ess} vs {ess_is} without");
    }

    #[test]
    fn without_intermediates_ais_is_importance_sampling() {
        let n = 50;
        let mut rng = crate::rng::stream(12, 0);
        let start = Broad(2.0);
        let mut x0 = Batch::zeros(2, n);
        fill_normal(&mut rng, x0.as_mut_slice());
        x0 *= 2.0;
        let mut l0 = vec![0.0; n];
        start.eval(&x0, &mut l0, None).unwrap();
        let kernel = RandomWalk::new(RandomWalkConfig::default()).unwrap();
        let mut ais = Annealer::new(&kernel, 0, Spacing::Linear).unwrap();
        let out = ais.run(&start, &Mixture, x0.clone(), &l0, &mut rng).unwrap();
        let mut lp = vec![0.0; n];
        Mixture.eval(&x0, &mut lp, None).unwrap();
        for j in 0..n {
            assert!((out.log_w[j] - (lp[j] - l0[j])).abs() < 1e-12);
        }
        assert_eq!(out.x, x0);
    }

    #[test]
    fn spacings_are_increasing_from_zero_to_one() {
        for s in [Spacing::Linear, Spacing::Geometric] {
            for k in 0..5 {
                let b = betas(k, s);
                assert_eq!(b.len(), k + 2);
                assert_eq!((b[0], b[k + 1]), (0.0, 1.0));
                assert!(b.windows(2).all(|w| w[0] < w[1]), "{s:?} {b:?}");
            }
        }
        assert_eq!(betas(1, Spacing::Linear), vec![0.0, 0.5, 1.0]);
    }
}
