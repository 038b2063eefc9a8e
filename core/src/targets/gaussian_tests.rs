use serde_json::json;

use super::*;
use crate::rng::stream;
use crate::testing::random_batch;
use crate::testing::{mean_and_mcse, simpson, target_grad_error};

fn correlated_3d() -> Gaussian {
    Gaussian::from_config(&json!({
        "mean": [1.0, -2.0, 0.5],
        "cov": [[2.0, 0.8, -0.3], [0.8, 1.0, 0.2], [-0.3, 0.2, 0.5]]
    }))
    .unwrap()
}

#[test]
fn gradients_match_finite_differences() {
    let mut rng = stream(11, 0);
    let diag = Gaussian::from_config(&json!({"dim": 4, "mean": 0.5, "std": [0.3, 1.0, 2.0, 5.0]})).unwrap();
    let full = correlated_3d();
    for t in [&diag as &dyn Target, &full] {
        let x = random_batch(t.dim(), 5, &mut rng) * 2.0;
        for col in x.column_iter() {
            let e = target_grad_error(t, col.as_slice()).unwrap();
            assert!(e < 1e-6, "relative gradient error {e}");
        }
    }
}

#[test]
fn diagonal_and_full_forms_agree() {
    let diag = Gaussian::diagonal(vec![1.0, -1.0], vec![0.5, 2.0]).unwrap();
    let full = Gaussian::correlated(vec![1.0, -1.0], DMatrix::from_row_slice(2, 2, &[0.25, 0.0, 0.0, 4.0])).unwrap();
    for x in [[0.0, 0.0], [1.3, -4.0], [-2.0, 3.0]] {
        let (a, b) = (diag.log_prob(&x).unwrap(), full.log_prob(&x).unwrap());
        assert!((a - b).abs() < 1e-13, "{a} vs {b}");
    }
    // Closed form at the mean: -log(2 pi * 0.5 * 2).
    let at_mean = diag.log_prob(&[1.0, -1.0]).unwrap();
    assert!((at_mean + (2.0 * PI).ln()).abs() < 1e-14);
}

#[test]
fn correlated_density_integrates_to_one() {
    let t = Gaussian::from_config(&json!({"mean": [0.5, -1.0], "cov": [[1.5, 0.9], [0.9, 1.0]]})).unwrap();
    // Inner and outer Simpson over +-12 standard deviations; spacing 0.05 resolves the unit scale.
    let z = simpson(&mut |a| simpson(&mut |b| t.log_prob(&[a, b]).unwrap().exp(), -13.0, 11.0, 480), -14.0, 15.0, 580);
    assert!(z.ln().abs() < 1e-8, "log Z by quadrature = {}", z.ln());
    assert_eq!(t.log_z(), Some(0.0));
}

#[test]
fn sampler_matches_mean_and_covariance() {
    let t = correlated_3d();
    let n = 100_000;
    let x = t.sample(n, &mut stream(12, 0)).unwrap();
    let cov = t.covariance();
    let row = |i: usize| x.row(i).iter().copied().collect::<Vec<_>>();
    // Each statistic is a mean of n independent terms; its MCSE comes from their sample
    // variance, and 4 MCSE leaves a false-alarm rate of about 6e-5 per comparison.
    for i in 0..3 {
        let xi = row(i);
        let (m, se) = mean_and_mcse(&xi);
        assert!((m - t.mean()[i]).abs() < 4.0 * se, "mean[{i}] {m} +- {se}");
        for j in i..3 {
            let xj = row(j);
            let prod: Vec<f64> = xi.iter().zip(&xj).map(|(a, b)| (a - t.mean()[i]) * (b - t.mean()[j])).collect();
            let (c, se) = mean_and_mcse(&prod);
            assert!((c - cov[(i, j)]).abs() < 4.0 * se, "cov[{i},{j}] {c} +- {se} vs {}", cov[(i, j)]);
        }
    }
}

#[test]
fn config_errors_are_clear() {
    let msg = |v: Value| Gaussian::from_config(&v).err().unwrap().to_string();
    assert!(msg(json!({"dim": 2, "sd": 1.0})).contains("unknown field `sd`"));
    assert!(msg(json!({"dim": 2, "std": -1.0})).contains("std[0] = -1 must be positive"));
    assert!(msg(json!({"dim": 3, "mean": [0.0, 1.0]})).contains("mean has length 2 but dim says 3"));
    assert!(msg(json!({"cov": [[1.0, 2.0], [2.0, 1.0]]})).contains("not positive definite"));
    assert!(msg(json!({"cov": [[1.0, 0.5], [0.0, 1.0]]})).contains("not symmetric"));
    assert!(msg(json!({"std": 1.0})).contains("give dim"));
    assert!(msg(json!({"dim": 2, "std": 1.0, "cov": [[1.0, 0.0], [0.0, 1.0]]})).contains("either std or cov"));
    let t = Registry::with_builtins().target("gaussian", &json!({"dim": 5})).unwrap();
    assert_eq!(t.dim(), 5);
}
