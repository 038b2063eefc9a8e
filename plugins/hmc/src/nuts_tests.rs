//! Statistical tests of the `nuts` kernel through the chain driver: moments of Gaussians within
//! 4 MCSE (one correlated, one diagonal with variances over four orders of magnitude that the
//! mass adaptation must learn), divergences counted, and exact resume from the saved state.

use bootflow_core::rng::stream;
use bootflow_core::{Batch, ChainConfig, ChainState, Kernel, LogDensity, Result, run_chains};

use crate::metric::{Metric, MetricKind};
use crate::sampling_tests::{Correlated, check_moments};
use crate::{Nuts, NutsConfig};

#[test]
fn samples_a_correlated_gaussian() {
    let target = Correlated::new(10, 1);
    let mut k = Nuts::new(10, NutsConfig::default()).unwrap();
    let run = check_moments(&mut k, &target, 16, 1000, 31);
    assert!((run.mean_accept - 0.8).abs() < 0.1, "acceptance {}", run.mean_accept);
}

#[test]
fn mass_adaptation_learns_variances_over_four_orders_of_magnitude() {
    let d = 20;
    let var: Vec<f64> = (0..d).map(|i| 10f64.powf(-2.0 + 4.0 * i as f64 / (d - 1) as f64)).collect();
    let mu: Vec<f64> = (0..d).map(|i| i as f64 * 0.1).collect();
    let target = Correlated::diagonal(&mu, &var);
    let mut k = Nuts::new(d, NutsConfig::default()).unwrap();
    check_moments(&mut k, &target, 16, 1000, 32);
    for (i, (learned, truth)) in k.metric().values().iter().zip(&var).enumerate() {
        assert!((learned / truth - 1.0).abs() < 0.3, "coordinate {i}: inverse mass {learned}, variance {truth}");
    }
    // With the metric learned the trajectories are far shorter than with the identity.
    let mut fixed = Nuts::new(d, NutsConfig { adapt_mass: false, ..NutsConfig::default() }).unwrap();
    let cfg = ChainConfig { n_chains: 16, n_warmup: 500, n_draws: 1000, init_scale: 1.0 };
    run_chains(&mut fixed, &target, &cfg, None, &mut stream(33, 0), |_| Ok(())).unwrap();
    let (adapted, identity) = (k.tuning()[2].1, fixed.tuning()[2].1);
    assert!(identity > 4.0 * adapted, "mean leapfrog steps: {adapted} adapted, {identity} with the identity");
}

/// A rotated 100-D Gaussian with condition number 1000: the dense metric learns the covariance,
/// so every mean and variance comes out within 4 MCSE with short trajectories.
#[test]
fn dense_adaptation_samples_an_ill_conditioned_100d_gaussian() {
    let d = 100;
    let target = Correlated::with_condition(d, 4, 1000.0);
    let mut k = Nuts::new(d, NutsConfig { metric: MetricKind::Dense, ..NutsConfig::default() }).unwrap();
    check_moments(&mut k, &target, 16, 1000, 34);
    let Metric::Dense { inv, .. } = k.metric() else { panic!("a dense metric") };
    let err = (inv - target.sigma()).norm() / target.sigma().norm();
    assert!(err < 0.2, "relative error of the learned covariance {err}");
}

/// A standard normal inside `|x_i| < 1.5`, `-inf` outside: trajectories that leave diverge.
struct Walled;
impl LogDensity for Walled {
    fn dim(&self) -> usize {
        2
    }
    fn eval(&self, x: &Batch, out: &mut [f64], grad: Option<&mut Batch>) -> Result<()> {
        for (j, c) in x.column_iter().enumerate() {
            out[j] = if c.iter().all(|v| v.abs() < 1.5) { -0.5 * c.norm_squared() } else { f64::NEG_INFINITY };
        }
        if let Some(g) = grad {
            g.copy_from(&(-x));
        }
        Ok(())
    }
}

#[test]
fn divergences_are_counted_and_the_chain_stays_inside() {
    let cfg = NutsConfig { step_size: 0.8, adapt_mass: false, ..NutsConfig::default() };
    let mut k = Nuts::new(2, cfg).unwrap();
    let mut state = ChainState::new(&Walled, Batch::zeros(2, 8), true).unwrap();
    let mut rng = stream(5, 0);
    for _ in 0..200 {
        k.step(&Walled, &mut state, &mut rng).unwrap();
        assert!(state.log_p.iter().all(|v| v.is_finite()), "a chain left the support");
    }
    assert!(k.divergences() > 0, "no divergence counted");
}

#[test]
fn a_restored_kernel_continues_bit_for_bit() {
    let target = Correlated::new(4, 2);
    let mut a = Nuts::new(4, NutsConfig::default()).unwrap();
    let mut state = ChainState::new(&target, Batch::from_element(4, 3, 0.5), true).unwrap();
    let mut rng = stream(7, 0);
    a.set_adapt(true);
    for _ in 0..130 {
        a.step(&target, &mut state, &mut rng).unwrap();
    }
    let mut b = Nuts::new(4, NutsConfig::default()).unwrap();
    b.set_state(&a.state()).unwrap();
    let (mut sa, mut sb) = (state.clone(), state);
    let (mut ra, mut rb) = (rng.clone(), rng);
    for _ in 0..30 {
        a.step(&target, &mut sa, &mut ra).unwrap();
        b.step(&target, &mut sb, &mut rb).unwrap();
    }
    assert_eq!(sa.x, sb.x);
    assert_eq!(a.state(), b.state());
    assert!(Nuts::new(4, NutsConfig { max_depth: 0, ..NutsConfig::default() }).is_err());
}
