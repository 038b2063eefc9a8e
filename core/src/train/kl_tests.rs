//! Reverse-KL estimators on a 1-D affine flow `x = z e^a + b` against the Gaussian target
//! `N(mu, sigma^2)`, where `F_q(a, b) = -a + (e^{2a} + (b - mu)^2) / (2 sigma^2) + const`:
//! `dF/da = -1 + e^{2a} / sigma^2`, `dF/db = (b - mu) / sigma^2`.

use crate::flow::Flow;
use crate::flow::affine::ElementwiseAffine;
use crate::model::objective::Objective;
use crate::train::kl::{Estimator, KlConfig, ReverseKl};
use crate::train::test_support::Gaussian;

const MU: f64 = 1.5;
const SIGMA: f64 = 0.7;

fn affine_flow(a: f64, b: f64) -> Flow {
    Flow::new(1, vec![Box::new(ElementwiseAffine::with(vec![a], vec![b]))]).unwrap()
}

fn target() -> Gaussian {
    Gaussian { mu: vec![MU], sigma: vec![SIGMA] }
}

/// Means and standard deviations of `m` gradient estimates, each on a fresh batch of `n`.
fn gradient_stats(est: Estimator, flow: &Flow, n: usize, m: usize, seed: u64) -> ([f64; 2], [f64; 2]) {
    let mut obj = ReverseKl::new(KlConfig { estimator: est, batch: n }).unwrap();
    let mut rng = crate::rng::stream(seed, 0);
    let t = target();
    let mut sums = [0.0; 2];
    let mut squares = [0.0; 2];
    for _ in 0..m {
        let g = obj.estimate(flow, &t, &mut rng).unwrap().grad;
        for k in 0..2 {
            sums[k] += g[k];
            squares[k] += g[k] * g[k];
        }
    }
    let mean = [sums[0] / m as f64, sums[1] / m as f64];
    let sd = [0, 1].map(|k| (squares[k] / m as f64 - mean[k] * mean[k]).max(0.0).sqrt());
    (mean, sd)
}

const ALL: [Estimator; 5] =
    [Estimator::Score, Estimator::ScoreBaseline, Estimator::Reparam, Estimator::Path, Estimator::FastPath];

#[test]
fn every_estimator_is_unbiased_for_the_analytic_gradient() {
    let (a, b) = (0.2, 0.3);
    let flow = affine_flow(a, b);
    let exact = [-1.0 + (2.0 * a).exp() / (SIGMA * SIGMA), (b - MU) / (SIGMA * SIGMA)];
    let (n, m) = (8, 4000);
    for (s, est) in ALL.into_iter().enumerate() {
        let (mean, sd) = gradient_stats(est, &flow, n, m, 100 + s as u64);
        // g2's baseline uses the same batch, so its expectation is (1 - 1/N) times the gradient.
        let factor = if est == Estimator::ScoreBaseline { (n - 1) as f64 / n as f64 } else { 1.0 };
        for k in 0..2 {
            // Independent batches: MCSE of the mean is sd / sqrt(m); allow 4 of them.
            let mcse = sd[k] / (m as f64).sqrt();
            assert!(mcse > 0.0, "{est:?} measured no spread");
            let want = factor * exact[k];
            assert!((mean[k] - want).abs() < 4.0 * mcse, "{est:?} component {k}: {} vs {want} (mcse {mcse})", mean[k]);
        }
    }
}

#[test]
fn at_the_optimum_only_g2_and_path_gradients_vanish() {
    let flow = affine_flow(SIGMA.ln(), MU);
    for (s, est) in ALL.into_iter().enumerate() {
        let (mean, sd) = gradient_stats(est, &flow, 16, 200, 200 + s as u64);
        let spread = sd[0].max(sd[1]).max(mean[0].abs()).max(mean[1].abs());
        match est {
            Estimator::ScoreBaseline | Estimator::Path | Estimator::FastPath => {
                assert!(spread < 1e-12, "{est:?} should vanish at q = p: {spread}")
            }
            // g1 carries s = -log Z != 0 times a zero-mean score; g3 has d s / d a = z^2 - 1 per sample.
            _ => assert!(sd[0] > 0.05, "{est:?} should fluctuate at q = p: {sd:?}"),
        }
    }
}

#[test]
fn loss_is_the_variational_free_energy_and_estimators_needing_gradients_say_so() {
    // At q = p the signal is s = log q - log p~ = -log Z = -ln(sigma sqrt(2 pi)) for every sample.
    let flow = affine_flow(SIGMA.ln(), MU);
    let mut obj = ReverseKl::new(KlConfig { estimator: Estimator::ScoreBaseline, batch: 32 }).unwrap();
    let out = obj.estimate(&flow, &target(), &mut crate::rng::stream(1, 0)).unwrap();
    let log_z = (SIGMA * (2.0 * std::f64::consts::PI).sqrt()).ln();
    assert!((out.loss + log_z).abs() < 1e-12, "{}", out.loss);
    assert_eq!(out.metrics[0].0, "ess");
    assert!((out.metrics[0].1 - 1.0).abs() < 1e-12);

    struct NoGrad(Gaussian);
    impl crate::Target for NoGrad {
        fn dim(&self) -> usize {
            1
        }
        fn log_prob(&self, x: &[f64]) -> crate::Result<f64> {
            self.0.log_prob(x)
        }
    }
    let mut g3 = ReverseKl::new(KlConfig { estimator: Estimator::Reparam, batch: 4 }).unwrap();
    let err = g3.estimate(&flow, &NoGrad(target()), &mut crate::rng::stream(1, 0)).unwrap_err();
    assert!(err.to_string().contains("g1 or g2"), "{err}");
    let reg = crate::Registry::with_builtins();
    let bad = reg.objective("kl", &serde_json::json!({"estimator": "g4"})).err().unwrap().to_string();
    assert!(bad.contains("g4"), "{bad}");
}

#[test]
fn forward_kl_matches_the_analytic_gradient() {
    // -E_p[log q] = a + (sigma^2 + (mu - b)^2) e^{-2a} / 2 + const.
    let (a, b) = (0.2, 0.3);
    let flow = affine_flow(a, b);
    let exact = [1.0 - (SIGMA * SIGMA + (MU - b).powi(2)) * (-2.0 * a).exp(), -(MU - b) * (-2.0 * a).exp()];
    let reg = crate::Registry::with_builtins();
    let mut obj = reg.objective("forward-kl", &serde_json::json!({"batch": 8})).unwrap();
    let mut rng = crate::rng::stream(9, 0);
    let m = 4000;
    let grads: Vec<Vec<f64>> = (0..m).map(|_| obj.estimate(&flow, &target(), &mut rng).unwrap().grad).collect();
    for k in 0..2 {
        let mean = grads.iter().map(|g| g[k]).sum::<f64>() / m as f64;
        let var = grads.iter().map(|g| (g[k] - mean).powi(2)).sum::<f64>() / (m - 1) as f64;
        // 4 MCSE of the mean of independent batch estimates.
        assert!((mean - exact[k]).abs() < 4.0 * (var / m as f64).sqrt(), "component {k}: {mean} vs {}", exact[k]);
    }
    struct NoSampler;
    impl crate::Target for NoSampler {
        fn dim(&self) -> usize {
            1
        }
        fn log_prob(&self, _: &[f64]) -> crate::Result<f64> {
            Ok(0.0)
        }
    }
    assert!(obj.estimate(&flow, &NoSampler, &mut rng).is_err());
}

/// Means and standard deviations of `m` forward-KL gradient estimates on batches of `n`.
fn forward_stats(estimator: &str, flow: &Flow, n: usize, m: usize, seed: u64) -> ([f64; 2], [f64; 2]) {
    let reg = crate::Registry::with_builtins();
    let mut obj = reg.objective("forward-kl", &serde_json::json!({"batch": n, "estimator": estimator})).unwrap();
    let mut rng = crate::rng::stream(seed, 0);
    let grads: Vec<Vec<f64>> = (0..m).map(|_| obj.estimate(flow, &target(), &mut rng).unwrap().grad).collect();
    let mean = [0, 1].map(|k| grads.iter().map(|g| g[k]).sum::<f64>() / m as f64);
    let sd = [0, 1].map(|k| (grads.iter().map(|g| (g[k] - mean[k]).powi(2)).sum::<f64>() / (m - 1) as f64).sqrt());
    (mean, sd)
}

#[test]
fn forward_kl_estimators_are_unbiased_and_only_the_path_one_vanishes_at_q_equal_p() {
    // -E_p[log q] = a + (sigma^2 + (mu - b)^2) e^{-2a} / 2 + const.
    let (a, b) = (0.2, 0.3);
    let flow = affine_flow(a, b);
    let exact = [1.0 - (SIGMA * SIGMA + (MU - b).powi(2)) * (-2.0 * a).exp(), -(MU - b) * (-2.0 * a).exp()];
    let m = 4000;
    for (s, est) in ["ml", "path"].into_iter().enumerate() {
        let (mean, sd) = forward_stats(est, &flow, 8, m, 300 + s as u64);
        for k in 0..2 {
            let mcse = sd[k] / (m as f64).sqrt();
            assert!(mcse > 0.0, "{est} measured no spread");
            assert!(
                (mean[k] - exact[k]).abs() < 4.0 * mcse,
                "{est} component {k}: {} vs {} (mcse {mcse})",
                mean[k],
                exact[k]
            );
        }
    }
    let optimum = affine_flow(SIGMA.ln(), MU);
    let (mean, sd) = forward_stats("path", &optimum, 16, 200, 310);
    let spread = sd[0].max(sd[1]).max(mean[0].abs()).max(mean[1].abs());
    assert!(spread < 1e-12, "the forward path gradient should vanish at q = p: {spread}");
    let (_, sd) = forward_stats("ml", &optimum, 16, 200, 311);
    assert!(sd[0] > 0.05, "ml should fluctuate at q = p: {sd:?}");
}
