use serde_json::json;

use super::*;
use crate::rng::stream;
use crate::testing::random_batch;
use crate::testing::{mean_and_mcse, simpson, target_grad_error};

#[test]
fn gradients_match_finite_differences() {
    let mut rng = stream(31, 0);
    for (dim, scale) in [(10, 3.0), (2, 0.7)] {
        let t = Funnel::new(dim, scale).unwrap();
        let x = random_batch(dim, 6, &mut rng) * 1.5;
        for col in x.column_iter() {
            let e = target_grad_error(&t, col.as_slice()).unwrap();
            assert!(e < 1e-6, "dim {dim}: relative gradient error {e}");
        }
    }
}

/// In `(v, u)` with `x = e^{v/2} u` the density is `N(v; 0, s^2) N(u; 0, 1)` times the Jacobian
/// `e^{v/2}` undone; Simpson over that smooth form finds log Z = 0 for dim 2 and 3.
#[test]
fn density_integrates_to_one() {
    for dim in [2usize, 3] {
        let t = Funnel::new(dim, 1.5).unwrap();
        let jac = |v: f64| (0.5 * v * (dim - 1) as f64).exp();
        let at = |v: f64, u: &[f64]| {
            let mut x = vec![v];
            x.extend(u.iter().map(|a| a * (0.5 * v).exp()));
            t.log_prob(&x).unwrap().exp() * jac(v)
        };
        let z = simpson(
            &mut |v| match dim {
                2 => simpson(&mut |u| at(v, &[u]), -9.0, 9.0, 180),
                _ => simpson(&mut |a| simpson(&mut |b| at(v, &[a, b]), -9.0, 9.0, 120), -9.0, 9.0, 120),
            },
            -12.0,
            12.0,
            240,
        );
        assert!(z.ln().abs() < 1e-8, "dim {dim}: log Z by quadrature = {}", z.ln());
    }
    assert_eq!(Funnel::new(10, 3.0).unwrap().log_z(), Some(0.0));
}

/// Exact draws: `v` has mean 0 and variance s^2; `log x_i^2 - v` is the log of a chi-square
/// with one degree of freedom, mean `-gamma - ln 2`, whatever `v`. Each within 4 MCSE.
#[test]
fn sampler_matches_the_definition() {
    let t = Funnel::new(10, 3.0).unwrap();
    let x = t.sample(100_000, &mut stream(32, 0)).unwrap();
    let v: Vec<f64> = x.row(0).iter().copied().collect();
    let (m, se) = mean_and_mcse(&v);
    assert!(m.abs() < 4.0 * se, "mean of v {m} +- {se}");
    let (m2, se2) = mean_and_mcse(&v.iter().map(|a| a * a).collect::<Vec<_>>());
    assert!((m2 - 9.0).abs() < 4.0 * se2, "mean of v^2 {m2} +- {se2}");
    let chi: Vec<f64> = x.column_iter().map(|c| (c[3] * c[3]).ln() - c[0]).collect();
    let (mc, sec) = mean_and_mcse(&chi);
    let expected = -0.577_215_664_901_532_9 - 2f64.ln();
    assert!((mc - expected).abs() < 4.0 * sec, "log chi-square mean {mc} +- {sec}, expected {expected}");
}

#[test]
fn config_is_checked() {
    let r = Registry::with_builtins();
    let t = r.target("funnel", &Value::Null).unwrap();
    assert!(t.dim() == 10 && t.has_grad() && t.has_sampler());
    assert_eq!(r.target("funnel", &json!({"dim": 4, "scale": 1.0})).unwrap().dim(), 4);
    for (cfg, needle) in [
        (json!({"dim": 1}), "dim must be at least 2"),
        (json!({"scale": 0.0}), "scale must be positive"),
        (json!({"width": 3}), "width"),
    ] {
        let msg = r.target("funnel", &cfg).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(msg.contains(needle), "{cfg}: {msg}");
    }
}
