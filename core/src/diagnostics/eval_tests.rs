use serde_json::json;

use super::*;
use crate::flow::affine::ElementwiseAffine;
use crate::model::bijection::Bijection;
use crate::rng;

/// A flow `N(mean, diag(std^2))`: one affine layer on a standard-normal base.
fn gaussian_flow(mean: &[f64], std: &[f64]) -> Flow {
    let layer = ElementwiseAffine::with(std.iter().map(|s| s.ln()).collect(), mean.to_vec());
    Flow::new(mean.len(), vec![Box::new(layer) as Box<dyn Bijection>]).unwrap()
}

fn rwm_ais(k: usize) -> AisEvalConfig {
    AisEvalConfig {
        n_intermediate: k,
        spacing: Spacing::Linear,
        kernel: "rwm".into(),
        kernel_config: json!({ "step_size": 0.5 }),
        kernel_state: None,
        adapt: true,
    }
}

#[test]
fn a_flow_equal_to_the_target_is_perfect() {
    let reg = Registry::with_builtins();
    let (mean, std) = ([1.0, -2.0], [0.5, 2.0]);
    let target = reg.target("gaussian", &json!({ "mean": mean, "std": std })).unwrap();
    let flow = gaussian_flow(&mean, &std);
    let cfg = EvalConfig { samples: 5000, chunk: 1500, ais: Some(rwm_ais(2)), ..Default::default() };
    let e = evaluate_flow(&flow, target.as_ref(), &cfg, &reg, &mut rng::stream(3, 0)).unwrap();
    // Every weight equals Z = 1 up to rounding: the estimates are exact, with zero error.
    assert!((e.ess - 1.0).abs() < 1e-9, "{e:?}");
    assert!(e.log_z.abs() < 1e-9 && e.log_z_se < 1e-4, "{e:?}");
    assert_eq!(e.log_z_exact, Some(0.0));
    assert!((e.forward_ess.unwrap() - 1.0).abs() < 1e-9, "{e:?}");
    // Along the path q^(1-b) p^b = p, so AIS moves exact samples and keeps equal weights.
    assert!((e.ess_ais.unwrap() - 1.0).abs() < 1e-9 && e.log_z_ais.unwrap().abs() < 1e-9, "{e:?}");
    assert_eq!(e.ais_accept.as_ref().unwrap().len(), 2);
    // A constant signal log q - log p~ = -log Z = 0.
    assert!(e.f_q.unwrap().abs() < 1e-9 && e.signal_sd.unwrap() < 1e-9, "{e:?}");
    // Mean log q on exact samples is minus the entropy of the Gaussian: -(1/2) sum ln(2 pi e s^2);
    // its sample std per point is sqrt(dim / 2), so 5 standard errors of 5000 draws.
    let neg_entropy: f64 =
        std.iter().map(|s| -0.5 * (2.0 * std::f64::consts::PI * std::f64::consts::E * s * s).ln()).sum();
    let tol = 5.0 * (1.0f64 / 5000.0).sqrt();
    assert!((e.mean_log_q_target_samples.unwrap() - neg_entropy).abs() < tol, "{e:?} vs {neg_entropy}");
    // log q - mean is -(1/2) chi^2_2 + 1, variance 1 (fourth central moment 9): the sample variance
    // has relative sd sqrt(8 / 5000) = 0.04, its square root 0.02; 10 % is 5 of those.
    let se = e.mean_log_q_target_samples_se.unwrap();
    assert!((se / (1.0f64 / 5000.0).sqrt() - 1.0).abs() < 0.1, "standard error {se}");
    assert!(e.test_mean_log_q.is_none() && e.bias.is_empty());
    let text = serde_json::to_string(&e).unwrap();
    assert!(text.contains("\"test_mean_log_q\":null"), "{text}");
}

#[test]
fn f_q_is_the_kl_divergence_minus_log_z() {
    // q = N(0, s^2), p~ = N(0, 1) unnormalised (log Z = log sqrt(2 pi) per coordinate): per
    // coordinate s = log q - log p~ = -log s - z^2/2 + s^2 z^2/2 - log sqrt(2 pi) with z ~ N(0, 1),
    // mean -log s + (s^2 - 1)/2 - log sqrt(2 pi), variance (s^2 - 1)^2 / 2.
    let reg = Registry::with_builtins();
    let target = reg.target("gaussian", &json!({ "mean": [0.0, 0.0], "std": [1.0, 1.0] })).unwrap();
    let sd = 1.3f64;
    let flow = gaussian_flow(&[0.0, 0.0], &[sd, sd]);
    let n = 20000;
    let cfg = EvalConfig { samples: n, chunk: 4000, ..Default::default() };
    let e = evaluate_flow(&flow, target.as_ref(), &cfg, &reg, &mut rng::stream(4, 0)).unwrap();
    let log_z = target.log_z().unwrap();
    let want = 2.0 * (-sd.ln() + (sd * sd - 1.0) / 2.0) - log_z;
    let want_sd = (2.0 * (sd * sd - 1.0).powi(2) / 2.0).sqrt();
    // MCSE of the mean is want_sd / sqrt(n); of the sd about want_sd / sqrt(n) (chi^2 signal: kurtosis 15).
    let mcse = want_sd / (n as f64).sqrt();
    assert!((e.f_q.unwrap() - want).abs() < 4.0 * mcse, "{e:?} vs {want}");
    assert!((e.signal_sd.unwrap() - want_sd).abs() < 4.0 * 2.0 * mcse, "{e:?} vs {want_sd}");
}

/// `E_q[w^k]` per coordinate for `q = N(0, s^2)`, `p = N(0, 1)`: `s^(k-1) / sqrt(k + (1 - k)/s^2)`.
fn moment(s: f64, k: f64) -> f64 {
    s.powf(k - 1.0) / (k + (1.0 - k) / (s * s)).sqrt()
}

#[test]
fn a_wider_gaussian_flow_matches_the_closed_form() {
    let reg = Registry::with_builtins();
    let (s, d, n) = (1.2f64, 2, 100_000usize);
    let target = reg.target("gaussian", &json!({ "dim": d })).unwrap();
    let flow = gaussian_flow(&vec![0.0; d], &vec![s; d]);
    let cfg = EvalConfig { samples: n, ..Default::default() };
    let e = evaluate_flow(&flow, target.as_ref(), &cfg, &reg, &mut rng::stream(5, 0)).unwrap();
    // The weights factorise over coordinates, so their moments are products of 1-D moments.
    let m = |k: f64| moment(s, k).powi(d as i32);
    let (m2, m3, m4) = (m(2.0), m(3.0), m(4.0));
    // Kish ESS -> 1/m2; delta-method error of m1^2/m2 from the closed-form covariance of (w, w^2).
    let (g1, g2) = (2.0 / m2, -1.0 / (m2 * m2));
    let (v11, v12, v22) = (m2 - 1.0, m3 - m2, m4 - m2 * m2);
    let ess_se = ((g1 * g1 * v11 + 2.0 * g1 * g2 * v12 + g2 * g2 * v22) / n as f64).sqrt();
    assert!((e.ess - 1.0 / m2).abs() < 4.0 * ess_se, "ESS {} vs {} (4 MCSE {})", e.ess, 1.0 / m2, 4.0 * ess_se);
    assert!(e.log_z.abs() < 4.0 * e.log_z_se, "{e:?}");
    // Forward ESS -> 1 / (E_p[w] E_p[1/w]) = 1/m2; under p: Var w = m3 - m2^2, Var 1/w = r - 1 with
    // r = E_q[q/p] = (s^-2 / sqrt(2/s^2 - 1))^d, Cov(w, 1/w) = 1 - m2.
    let r = (1.0 / (s * s * (2.0 / (s * s) - 1.0).sqrt())).powi(d as i32);
    let (h1, h2) = (-1.0 / (m2 * m2), -1.0 / m2);
    let fwd_se = ((h1 * h1 * (m3 - m2 * m2) + 2.0 * h1 * h2 * (1.0 - m2) + h2 * h2 * (r - 1.0)) / n as f64).sqrt();
    let fwd = e.forward_ess.unwrap();
    assert!((fwd - 1.0 / m2).abs() < 4.0 * fwd_se, "forward ESS {fwd} vs {} (4 MCSE {})", 1.0 / m2, 4.0 * fwd_se);
}

#[test]
fn bias_over_runs_by_hand() {
    // Run 1: weights (1, 3) on values (0, 4) give 3, relative error (3 - 2) / 2 = +0.5; run 2:
    // equal weights on (0, 2) give 1, error -0.5. The errors cancel: bias 0, std sqrt(2 * 0.25),
    // mean absolute error 0.5. A third, partial run is dropped.
    let w = Weighted { log_w: vec![0.0, 3f64.ln(), 0.0, 0.0, 0.0], obs: vec![vec![0.0, 4.0, 0.0, 2.0, 9.0]] };
    let b = w.bias(0, 2.0, 2, 100).unwrap().unwrap();
    assert_eq!(b.runs, 2);
    assert!(b.bias.abs() < 1e-14 && (b.std - 0.5f64.sqrt()).abs() < 1e-14, "{b:?}");
    assert!((b.mean_abs_error - 0.5).abs() < 1e-14, "{b:?}");
    // Fewer than two runs give no figure.
    assert!(w.bias(0, 2.0, 2, 1).unwrap().is_none());
    // A zero exact mean gives absolute errors: 3 and 1.
    let abs = w.bias(0, 0.0, 2, 2).unwrap().unwrap();
    assert!((abs.bias - 2.0).abs() < 1e-14 && (abs.mean_abs_error - 2.0).abs() < 1e-14, "{abs:?}");
}

#[test]
fn gmm5_reports_the_test_function_bias_with_and_without_ais() {
    let reg = Registry::with_builtins();
    let target = reg.target("gmm5", &Value::Null).unwrap();
    // A broad Gaussian flow covering every component.
    let flow = gaussian_flow(&[0.0, 0.0], &[8.0, 8.0]);
    let cfg = EvalConfig { samples: 4000, bias_runs: 3, ais: Some(rwm_ais(1)), ..Default::default() };
    let e = evaluate_flow(&flow, target.as_ref(), &cfg, &reg, &mut rng::stream(9, 0)).unwrap();
    assert_eq!(e.bias.len(), 1);
    let b = &e.bias[0];
    assert_eq!((b.name.as_str(), b.relative, b.flow.as_ref().unwrap().runs), ("f", true, 3));
    assert!((b.exact - 205.650).abs() < 1e-3, "{b:?}");
    assert_eq!(b.ais.as_ref().unwrap().runs, 3);
    assert!(e.ess < 0.5 && e.ess > 0.0, "{e:?}");
}

#[test]
fn empty_evaluations_are_refused() {
    let reg = Registry::with_builtins();
    let target = reg.target("gaussian", &json!({ "dim": 1 })).unwrap();
    let flow = gaussian_flow(&[0.0], &[1.0]);
    let cfg = EvalConfig { samples: 0, ..Default::default() };
    assert!(evaluate_flow(&flow, target.as_ref(), &cfg, &reg, &mut rng::stream(1, 0)).is_err());
    let wrong = reg.target("gaussian", &json!({ "dim": 2 })).unwrap();
    let cfg = EvalConfig { samples: 10, ..Default::default() };
    assert!(evaluate_flow(&flow, wrong.as_ref(), &cfg, &reg, &mut rng::stream(1, 0)).is_err());
}
