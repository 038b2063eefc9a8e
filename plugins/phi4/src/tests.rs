use std::f64::consts::PI;

use bootflow_core::rng::stream;
use bootflow_core::testing::random_batch;
use bootflow_core::testing::{mean_and_mcse, simpson, target_grad_error};
use nalgebra::{DMatrix, DVector};
use serde_json::json;

use super::*;

/// Site index of (row, col) with periodic wrap, written independently of the crate's code.
fn site(l: usize, r: isize, c: isize) -> usize {
    let w = |v: isize| v.rem_euclid(l as isize) as usize;
    w(r) * l + w(c)
}

/// The action straight from its definition, one loop over rows and columns and one over mu.
fn reference_action(l: usize, phi: &[f64], m2: f64, lambda: f64, norm: Normalisation) -> f64 {
    let mut s = 0.0;
    for r in 0..l as isize {
        for c in 0..l as isize {
            let p = phi[site(l, r, c)];
            for (dr, dc) in [(0, 1), (1, 0)] {
                let q = phi[site(l, r + dr, c + dc)];
                s += match norm {
                    Normalisation::Tutorial => -2.0 * p * q,
                    Normalisation::Standard => 0.5 * (q - p) * (q - p),
                };
            }
            s += match norm {
                Normalisation::Tutorial => (4.0 + m2) * p * p + lambda * p.powi(4),
                Normalisation::Standard => 0.5 * m2 * p * p + lambda / 24.0 * p.powi(4),
            };
        }
    }
    s
}

/// dS/dphi from the hand derivation: tutorial `-2 sum_mu (phi_{x+mu} + phi_{x-mu}) + 2 (4 + m2) phi
/// + 4 lambda phi^3`; standard `sum_mu (2 phi - phi_{x+mu} - phi_{x-mu}) + m2 phi + lambda phi^3 / 6`.
fn reference_grad(l: usize, phi: &[f64], m2: f64, lambda: f64, norm: Normalisation) -> Vec<f64> {
    let mut g = vec![0.0; l * l];
    for r in 0..l as isize {
        for c in 0..l as isize {
            let x = site(l, r, c);
            let p = phi[x];
            let nb: f64 = [(0, 1), (1, 0), (0, -1), (-1, 0)].iter().map(|(dr, dc)| phi[site(l, r + dr, c + dc)]).sum();
            g[x] = match norm {
                Normalisation::Tutorial => -2.0 * nb + 2.0 * (4.0 + m2) * p + 4.0 * lambda * p.powi(3),
                Normalisation::Standard => 4.0 * p - nb + m2 * p + lambda / 6.0 * p.powi(3),
            };
        }
    }
    g
}

const NORMS: [Normalisation; 2] = [Normalisation::Tutorial, Normalisation::Standard];

#[test]
fn action_and_gradient_match_the_definition() {
    let mut rng = stream(41, 0);
    for norm in NORMS {
        for (l, m2, lambda) in [(2, -4.0, 8.0), (3, 1.5, 0.3), (8, -4.0, 8.0), (5, 0.6, 0.0)] {
            let t = Phi4::new(l, m2, lambda, norm).unwrap();
            let x = random_batch(l * l, 4, &mut rng);
            for col in x.column_iter() {
                let phi = col.as_slice();
                let want = reference_action(l, phi, m2, lambda, norm);
                let mut g = vec![0.0; l * l];
                let got = t.log_prob_grad(phi, &mut g).unwrap();
                assert!((got + want).abs() < 1e-12 * (1.0 + want.abs()), "{norm:?} L={l}: {got} vs {}", -want);
                let ref_g = reference_grad(l, phi, m2, lambda, norm);
                let err = g.iter().zip(&ref_g).map(|(a, b)| (a + b).abs()).fold(0.0, f64::max);
                assert!(err < 1e-12 * (1.0 + lambda), "{norm:?} L={l}: gradient differs by {err}");
                let e = target_grad_error(&t, phi).unwrap();
                assert!(e < 1e-6, "{norm:?} L={l}: finite-difference relative error {e}");
            }
        }
    }
}

#[test]
fn standard_and_tutorial_describe_the_same_theory() {
    // S_std(sqrt(2) phi; m2, 6 lambda) = S_tut(phi; m2, lambda), gradients related by the chain rule.
    let mut rng = stream(42, 0);
    let (l, m2, lambda) = (6, -4.0, 8.0);
    let tut = Phi4::new(l, m2, lambda, Normalisation::Tutorial).unwrap();
    let std = Phi4::new(l, m2, 6.0 * lambda, Normalisation::Standard).unwrap();
    let x = random_batch(l * l, 5, &mut rng);
    let (mut gt, mut gs) = (vec![0.0; l * l], vec![0.0; l * l]);
    for col in x.column_iter() {
        let phi = col.as_slice();
        let scaled: Vec<f64> = phi.iter().map(|p| 2f64.sqrt() * p).collect();
        let (a, b) = (tut.log_prob_grad(phi, &mut gt).unwrap(), std.log_prob_grad(&scaled, &mut gs).unwrap());
        assert!((a - b).abs() < 1e-12 * (1.0 + a.abs()), "{a} vs {b}");
        assert!(gt.iter().zip(&gs).all(|(t, s)| (t - 2f64.sqrt() * s).abs() < 1e-11 * (1.0 + t.abs())));
    }
    // Free field: F_std = F_tut - (V/2) ln 2.
    let (ft, fs) = (
        Phi4::new(5, 0.7, 0.0, Normalisation::Tutorial).unwrap(),
        Phi4::new(5, 0.7, 0.0, Normalisation::Standard).unwrap(),
    );
    assert!((fs.log_z().unwrap() - ft.log_z().unwrap() - 12.5 * 2f64.ln()).abs() < 1e-12);
}

/// K of S = phi^T K phi for a free field, column by column from the reference gradient
/// (grad S(e_y) = 2 K e_y), independent of the Fourier formulas under test.
fn dense_kernel(l: usize, m2: f64, norm: Normalisation) -> DMatrix<f64> {
    let v = l * l;
    DMatrix::from_fn(v, v, |x, y| {
        let mut e = vec![0.0; v];
        e[y] = 1.0;
        0.5 * reference_grad(l, &e, m2, 0.0, norm)[x]
    })
}

fn known(t: &Phi4, name: &str) -> f64 {
    t.known_means().into_iter().find(|(n, _)| n == name).unwrap().1
}

#[test]
fn free_field_normaliser_and_means_are_exact() {
    for norm in NORMS {
        for (l, m2) in [(2, 0.5), (3, 1.0), (5, 0.3), (8, 2.0)] {
            let t = Phi4::new(l, m2, 0.0, norm).unwrap();
            let v = (l * l) as f64;
            let k = dense_kernel(l, m2, norm);
            let chol = k.clone().cholesky().unwrap();
            let log_det: f64 = 2.0 * chol.l().diagonal().iter().map(|d| d.ln()).sum::<f64>();
            let want = 0.5 * v * PI.ln() - 0.5 * log_det;
            assert!((t.log_z().unwrap() - want).abs() < 1e-10, "{norm:?} L={l}: {:?} vs {want}", t.log_z());
            let c = (k * 2.0).try_inverse().unwrap();
            let ones = DVector::from_element(l * l, 1.0);
            let m_sq = (ones.transpose() * &c * &ones)[(0, 0)];
            let bonds: f64 = (0..l * l)
                .map(|x| {
                    c[(x, site(l, (x / l) as isize, (x % l) as isize + 1))]
                        + c[(x, site(l, (x / l + 1) as isize, (x % l) as isize))]
                })
                .sum();
            for (name, value) in [
                ("M", 0.0),
                ("chi2", m_sq / v),
                ("abs_M", (2.0 / PI).sqrt() * m_sq.sqrt() / v),
                ("phi2", c.trace() / v),
                ("E", bonds / (2.0 * v)),
            ] {
                assert!(
                    (known(&t, name) - value).abs() < 1e-12,
                    "{norm:?} L={l} {name}: {} vs {value}",
                    known(&t, name)
                );
            }
            if norm == Normalisation::Tutorial {
                // docs/targets.md §1.1: F = -(V/2) ln pi + (1/2) sum_n ln(khat^2 + m2), <M^2>/V = 1/(2 m2).
                let khat2 = |n: usize| 4.0 * (PI * n as f64 / l as f64).sin().powi(2);
                let f: f64 = -0.5 * v * PI.ln()
                    + 0.5
                        * (0..l)
                            .flat_map(|a| (0..l).map(move |b| (a, b)))
                            .map(|(a, b)| (khat2(a) + khat2(b) + m2).ln())
                            .sum::<f64>();
                assert!((t.log_z().unwrap() + f).abs() < 1e-10);
                assert!((known(&t, "chi2") - 0.5 / m2).abs() < 1e-12);
            }
        }
    }
}

#[test]
fn observables_of_exact_free_field_samples_match_their_means() {
    // Exact draws phi = L^-T z with 2K = L L^T; each observable averaged over independent draws,
    // MCSE from the sample variance, 4 MCSE.
    let (l, m2) = (4, 0.8);
    let t = Phi4::new(l, m2, 0.0, Normalisation::Tutorial).unwrap();
    let chol = (dense_kernel(l, m2, Normalisation::Tutorial) * 2.0).cholesky().unwrap();
    let n = 40_000;
    let phi = chol.l().transpose().solve_upper_triangular(&random_batch(l * l, n, &mut stream(43, 0))).unwrap();
    let mut obs = vec![vec![0.0; n]; 5];
    let mut out = [0.0; 5];
    for (j, col) in phi.column_iter().enumerate() {
        t.observables(col.as_slice(), &mut out).unwrap();
        obs.iter_mut().zip(out).for_each(|(o, v)| o[j] = v);
    }
    assert_eq!(t.observable_names(), ["M", "abs_M", "chi2", "E", "phi2"]);
    for (name, values) in t.observable_names().iter().zip(&obs) {
        let (m, se) = mean_and_mcse(values);
        assert!((m - known(&t, name)).abs() < 4.0 * se, "{name}: {m} +- {se} vs {}", known(&t, name));
    }
}

#[test]
fn observables_by_hand() {
    let t = Phi4::new(2, -4.0, 8.0, Normalisation::Tutorial).unwrap();
    let mut out = [0.0; 5];
    t.observables(&[1.0, -2.0, 0.5, 3.0], &mut out).unwrap();
    // M = 2.5, V = 4; bonds (each counted per x and mu, L = 2 wraps onto the same neighbour):
    // sum_x phi_x (phi_right + phi_down) = 1(-2+0.5) + (-2)(1+3) + 0.5(3+1) + 3(0.5-2) = -12.
    assert_eq!(out, [2.5, 2.5 / 4.0, 6.25 / 4.0, -12.0 / 8.0, 14.25 / 4.0]);
    assert!(t.log_z().is_none() && t.known_means().is_empty());
}

#[test]
fn independent_sites_log_z_by_quadrature() {
    // log integral exp(-(4 + m2) y^2 - lambda y^4) dy at m2 = -4, lambda = 8 (docs/targets.md §1.1: 0.07502);
    // high-precision value 0.07501495871817317.
    let z = simpson(&mut |y: f64| (-8.0 * y.powi(4)).exp(), -4.0, 4.0, 8000);
    assert!((z.ln() - 0.07501495871817317).abs() < 1e-10, "{}", z.ln());
}

#[test]
fn config_keys_defaults_and_errors() {
    let mut reg = Registry::new();
    register(&mut reg).unwrap();
    let t = reg.target("phi4", &Value::Null).unwrap();
    assert_eq!(t.dim(), 64);
    let p = Phi4::from_config(&json!({"L": 4, "m2": 1.0, "lambda": 0.5, "normalisation": "standard"})).unwrap();
    assert_eq!((p.extent(), p.parameters()), (4, (1.0, 0.5, Normalisation::Standard)));
    let msg = |v: Value| reg.target("phi4", &v).err().unwrap().to_string();
    assert!(msg(json!({"L": 1})).contains("L = 1 must be at least 2"));
    assert!(msg(json!({"l": 4})).contains("unknown field `l`"));
    assert!(msg(json!({"normalisation": "lattice"})).contains("unknown variant `lattice`"));
    assert!(msg(json!({"lambda": -1.0})).contains("lambda >= 0"));
    assert!(msg(json!({"lambda": 0.0, "m2": -1.0})).contains("needs m2 > 0"));
}
