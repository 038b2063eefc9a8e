use bootflow_core::rng::stream;
use bootflow_core::testing::random_batch;
use bootflow_core::testing::{mean_and_mcse, simpson, target_grad_error};
use serde_json::json;

use super::*;
use crate::well::{WELL_Z, WellSampler, log_envelope, log_f};

/// `integral g(x) f(x) dx / integral f(x) dx` by Simpson on [-6, 6] (f < e^-1000 outside).
fn well_expectation(g: impl Fn(f64) -> f64) -> f64 {
    let n = 24_000;
    simpson(&mut |x| g(x) * log_f(x).exp(), -6.0, 6.0, n) / simpson(&mut |x| log_f(x).exp(), -6.0, 6.0, n)
}

#[test]
fn normaliser_matches_quadrature() {
    // Spacing 5e-4 against well widths of about 0.2.
    let z = simpson(&mut |x| log_f(x).exp(), -6.0, 6.0, 24_000);
    assert!((z.ln() - WELL_Z.ln()).abs() < 1e-8, "quadrature {z} vs {WELL_Z}");
    assert!((z - 11784.50927).abs() < 1e-5);
    let t = manywell_from_config(&json!({"dim": 16})).unwrap();
    let per_pair = (11784.50927f64).ln() + 0.5 * (2.0 * std::f64::consts::PI).ln();
    assert!((t.log_z().unwrap() - 8.0 * per_pair).abs() < 1e-8);
}

#[test]
fn gradients_match_finite_differences() {
    let mut rng = stream(31, 0);
    for dim in [2, 32] {
        let t = ManyWell::new(dim).unwrap();
        let x = random_batch(dim, 6, &mut rng) * 1.5;
        for col in x.column_iter() {
            let e = target_grad_error(&t, col.as_slice()).unwrap();
            assert!(e < 1e-6, "dim {dim}: relative gradient error {e}");
        }
    }
}

#[test]
fn rejection_bound_holds_on_a_finer_grid() {
    let s = WellSampler::new();
    let worst = (-1_000_000..=1_000_000)
        .map(|i| i as f64 * 1e-5)
        .map(|x| log_f(x) - log_envelope(x))
        .fold(f64::NEG_INFINITY, f64::max);
    assert!(worst <= s.log_bound() && worst > s.log_bound() - 2e-3, "max {worst}, bound {}", s.log_bound());
}

#[test]
fn sampler_moments_match_quadrature() {
    let t = ManyWell::new(4).unwrap();
    let x = t.sample(60_000, &mut stream(32, 0)).unwrap();
    // Coordinates of one type are independent across pairs and samples, so they are pooled; each
    // statistic is a mean of independent terms with MCSE from their sample variance; 4 MCSE.
    let pooled = |parity: usize| -> Vec<f64> {
        x.column_iter().flat_map(|c| c.iter().skip(parity).step_by(2).copied().collect::<Vec<_>>()).collect()
    };
    let (well, gauss) = (pooled(0), pooled(1));
    let mu = well_expectation(|x| x);
    let var = well_expectation(|x| (x - mu) * (x - mu));
    assert!((mu - 1.187961).abs() < 1e-6 && (var - 1.548555).abs() < 1e-6, "quadrature {mu} {var}");
    for (values, mean, variance, what) in [(&well, mu, var, "well"), (&gauss, 0.0, 1.0, "gaussian")] {
        let (m, se) = mean_and_mcse(values);
        assert!((m - mean).abs() < 4.0 * se, "{what} mean {m} +- {se} vs {mean}");
        let sq: Vec<f64> = values.iter().map(|v| (v - mean) * (v - mean)).collect();
        let (v, se) = mean_and_mcse(&sq);
        assert!((v - variance).abs() < 4.0 * se, "{what} variance {v} +- {se} vs {variance}");
    }
}

#[test]
fn exact_samples_have_the_known_mean_log_p() {
    // E_p[log p] for 16-D is -13.7486 (docs/targets.md §4.1); MCSE from the sample variance, 4 MCSE.
    let t = ManyWell::new(16).unwrap();
    let x = t.sample(20_000, &mut stream(33, 0)).unwrap();
    let mut lp = vec![0.0; x.ncols()];
    t.log_prob_batch(&x, &mut lp).unwrap();
    let log_z = t.log_z().unwrap();
    lp.iter_mut().for_each(|v| *v -= log_z);
    let (m, se) = mean_and_mcse(&lp);
    assert!((m + 13.7486085).abs() < 4.0 * se, "mean log p {m} +- {se}");
}

#[test]
fn test_set_is_every_mode_centre() {
    let t = manywell_from_config(&Value::Null).unwrap();
    assert_eq!(t.dim(), 32);
    let s = t.test_set().unwrap();
    assert_eq!(s.shape(), (32, 65_536));
    let mut codes: Vec<u32> = s
        .column_iter()
        .map(|c| {
            assert!(c.iter().skip(1).step_by(2).all(|v| *v == 0.0));
            c.iter().step_by(2).enumerate().map(|(i, v)| if *v == 1.7 { 1 << i } else { 0 }).sum()
        })
        .collect();
    assert!(s.iter().step_by(2).all(|v| v.abs() == 1.7));
    codes.sort_unstable();
    codes.dedup();
    assert_eq!(codes.len(), 65_536);
    // Mean normalised log p over the test set: -20.8893 (32-D) and -10.4446 (16-D), docs/targets.md §4.1.
    for (dim, best) in [(32, -20.889275313), (16, -10.444637657)] {
        let t = ManyWell::new(dim).unwrap();
        let s = t.test_set().unwrap();
        let mut lp = vec![0.0; s.ncols()];
        t.log_prob_batch(&s, &mut lp).unwrap();
        let mean = lp.iter().sum::<f64>() / lp.len() as f64 - t.log_z().unwrap();
        assert!((mean - best).abs() < 1e-8, "dim {dim}: {mean}");
    }
    assert!(ManyWell::new(34).unwrap().test_set().is_none());
}

#[test]
fn registry_names_and_config_errors() {
    let mut reg = Registry::new();
    register(&mut reg).unwrap();
    assert_eq!(reg.target("double-well", &Value::Null).unwrap().dim(), 2);
    assert_eq!(reg.target("manywell", &json!({"dim": 16})).unwrap().dim(), 16);
    let msg = |name: &str, v: Value| reg.target(name, &v).err().unwrap().to_string();
    assert!(msg("manywell", json!({"dim": 15})).contains("dim = 15 must be even"));
    assert!(msg("manywell", json!({"dim": 0})).contains("dim = 0 must be even and at least 2"));
    assert!(msg("manywell", json!({"dims": 4})).contains("unknown field `dims`"));
    assert!(msg("double-well", json!({"dim": 4})).contains("unknown field `dim`"));
}

#[test]
fn far_out_the_density_is_minus_infinity_not_nan() {
    let t = ManyWell::new(4).unwrap();
    for x in [[1e160, 0.0, 0.0, 0.0], [0.0, 0.0, -1e90, 1.0], [f64::NEG_INFINITY, 0.0, 0.0, 0.0]] {
        assert_eq!(t.log_prob(&x).unwrap(), f64::NEG_INFINITY, "{x:?}");
        let mut g = [0.0; 4];
        assert_eq!(t.log_prob_grad(&x, &mut g).unwrap(), f64::NEG_INFINITY, "{x:?}");
        assert!(g.iter().all(|v| !v.is_nan()), "{g:?}");
    }
    assert!(log_f(1e70).is_finite());
}
