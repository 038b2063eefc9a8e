use serde_json::json;

use super::*;
use crate::rng::stream;
use crate::targets::gmm_builtins::{gmm5, gmm40, gmm40_std};
use crate::testing::random_batch;
use crate::testing::{mean_and_mcse, simpson, target_grad_error};

fn known_f(t: &GaussianMixture) -> f64 {
    t.known_means().iter().find(|(n, _)| n == "f").unwrap().1
}

#[test]
fn builtins_have_the_published_test_function_means() {
    let (a, b) = (known_f(&gmm5().unwrap()), known_f(&gmm40().unwrap()));
    assert!((a - 205.650).abs() < 5e-4, "gmm5: {a}");
    assert!((b - 1777.886).abs() < 5e-4, "gmm: {b}");
    let g = gmm40().unwrap();
    assert_eq!(g.weights().len(), 40);
    // softplus(1) in double precision (the data file quotes its float32 rounding, 6e-8 lower).
    assert!((g.std(7)[1] - 1.3132616875182228).abs() < 1e-15 && gmm40_std() == g.std(39)[0]);
    assert!((gmm5().unwrap().weights().iter().sum::<f64>() - 1.0).abs() < 1e-15);
}

#[test]
fn gradients_match_finite_differences() {
    let mut rng = stream(21, 0);
    let mix3 = GaussianMixture::from_config(&json!({
        "weights": [1.0, 3.0, 2.0],
        "means": [[0.0, 1.0, -1.0], [2.0, -2.0, 0.5], [-1.0, 0.0, 3.0]],
        "stds": [[0.5, 1.0, 2.0], [1.0, 0.3, 1.0], [2.0, 2.0, 0.7]]
    }))
    .unwrap();
    let (g5, g40) = (gmm5().unwrap(), gmm40().unwrap());
    for (t, spread) in [(&mix3, 2.0), (&g5, 8.0), (&g40, 30.0)] {
        let x = random_batch(t.dim(), 8, &mut rng) * spread;
        for col in x.column_iter() {
            let e = target_grad_error(t, col.as_slice()).unwrap();
            assert!(e < 1e-6, "relative gradient error {e} at {:?}", col.as_slice());
        }
    }
    // Far in the tail every component underflows on its own; log-sum-exp keeps it finite.
    let mut g = [0.0; 2];
    let v = g5.log_prob_grad(&[400.0, -300.0], &mut g).unwrap();
    assert!(v.is_finite() && g.iter().all(|a| a.is_finite()) && v < -1e4);
}

#[test]
fn densities_integrate_to_one() {
    // Boxes extend 12 std beyond every mean. Simpson is (4 T(h) - T(2h)) / 3 with trapezoid sums T,
    // whose error on a Gaussian of std s is about 2 exp(-2 pi^2 s^2 / h^2): with h = 0.2 and
    // s >= 1.08 that is below 1e-60, so the spacing is generous.
    let g5 = gmm5().unwrap();
    let z5 =
        simpson(&mut |a| simpson(&mut |b| g5.log_prob(&[a, b]).unwrap().exp(), -34.0, 16.0, 250), -35.0, 32.0, 335);
    assert!(z5.ln().abs() < 1e-8, "gmm5 log Z by quadrature {}", z5.ln());
    let g40 = gmm40().unwrap();
    let z40 =
        simpson(&mut |a| simpson(&mut |b| g40.log_prob(&[a, b]).unwrap().exp(), -56.0, 56.0, 560), -56.0, 56.0, 560);
    assert!(z40.ln().abs() < 1e-8, "gmm log Z by quadrature {}", z40.ln());
}

#[test]
fn sampler_reproduces_test_function_mean_and_component_moments() {
    let n = 200_000;
    for (t, seed) in [(gmm5().unwrap(), 1), (gmm40().unwrap(), 2)] {
        let x = t.sample(n, &mut stream(22, seed)).unwrap();
        let mut f = vec![0.0; n];
        for (j, col) in x.column_iter().enumerate() {
            t.observables(col.as_slice(), &mut f[j..j + 1]).unwrap();
        }
        // f(x) of independent draws: MCSE from their sample variance; 4 MCSE.
        let (m, se) = mean_and_mcse(&f);
        let truth = known_f(&t);
        assert!((m - truth).abs() < 4.0 * se, "E f: {m} +- {se} vs {truth}");
        // Mean and variance of each coordinate against the mixture's closed forms.
        for i in 0..2 {
            let mu: f64 = (0..t.weights().len()).map(|k| t.weights()[k] * t.mean(k)[i]).sum();
            let second: f64 = (0..t.weights().len())
                .map(|k| t.weights()[k] * (t.std(k)[i].powi(2) + (t.mean(k)[i] - mu).powi(2)))
                .sum();
            let xi: Vec<f64> = x.row(i).iter().copied().collect();
            let (m, se) = mean_and_mcse(&xi);
            assert!((m - mu).abs() < 4.0 * se, "mean[{i}] {m} +- {se} vs {mu}");
            let sq: Vec<f64> = xi.iter().map(|v| (v - mu).powi(2)).collect();
            let (v, se) = mean_and_mcse(&sq);
            assert!((v - second).abs() < 4.0 * se, "var[{i}] {v} +- {se} vs {second}");
        }
    }
}

#[test]
fn config_and_csv_paths() {
    let dir = std::env::temp_dir().join(format!("bootflow-mixture-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("m.csv");
    std::fs::write(&path, "mean_a,mean_b,mean_c\n0,0,0\n1,2,3\n").unwrap();
    let p = path.to_str().unwrap();
    let t = Registry::with_builtins().target("mixture", &json!({"data": p, "std": 0.5})).unwrap();
    assert_eq!(t.dim(), 3);
    let at_mean = t.log_prob(&[1.0, 2.0, 3.0]).unwrap();
    let one = -3.0 * (0.5f64.ln() + 0.5 * (2.0 * PI).ln()) + 0.5f64.ln();
    assert!((at_mean - (one + (1.0 + (-0.5 * 14.0 / 0.25f64).exp()).ln())).abs() < 1e-12);
    std::fs::remove_dir_all(&dir).unwrap();

    let msg = |v: Value| GaussianMixture::from_config(&v).err().unwrap().to_string();
    assert!(msg(json!({"data": p})).contains(p));
    assert!(msg(json!({"means": [[0.0]], "colour": 1})).contains("unknown field `colour`"));
    assert!(msg(json!({"means": [[0.0]], "std": -2.0})).contains("must be positive"));
    assert!(msg(json!({"means": [[0.0], [1.0]], "weights": [1.0, 0.0]})).contains("weight 0 of component 1"));
    assert!(msg(json!({"means": [[0.0, 1.0], [1.0]]})).contains("component 1 does not have dimension 2"));
    assert!(msg(json!({})).contains("give data"));
    let e = Registry::with_builtins().target("gmm5", &json!({"n": 3})).err().unwrap().to_string();
    assert!(e.contains("unknown field `n`"), "{e}");
}

#[test]
fn far_out_the_density_is_minus_infinity_not_nan() {
    // At 1e160 every component's squared distance overflows to +inf.
    for t in [gmm5().unwrap(), gmm40().unwrap()] {
        for x in [[1e160, 0.0], [-1e200, 3.0], [f64::INFINITY, 0.0]] {
            assert_eq!(t.log_prob(&x).unwrap(), f64::NEG_INFINITY, "{x:?}");
            let mut g = [f64::NAN; 2];
            assert_eq!(t.log_prob_grad(&x, &mut g).unwrap(), f64::NEG_INFINITY, "{x:?}");
            assert_eq!(g, [0.0, 0.0]);
        }
        // Just inside f64's range the value stays finite and matches the gradient form.
        let x = [1e150, 0.0];
        let mut g = [0.0; 2];
        let (a, b) = (t.log_prob(&x).unwrap(), t.log_prob_grad(&x, &mut g).unwrap());
        assert!(a.is_finite() && a == b && g.iter().all(|v| v.is_finite()), "{a} {b} {g:?}");
    }
}
