//! Exact results for the free field (lambda = 0, m2 > 0): the density is Gaussian with precision
//! 2K, whose eigenvalues are `quad - hop sum_mu cos(2 pi n_mu / L)` on the L^2 lattice momenta.

use std::f64::consts::PI;

use crate::action::Couplings;

/// Eigenvalue of K at momentum `(n0, n1)`.
fn eigenvalue(c: &Couplings, l: usize, n0: usize, n1: usize) -> f64 {
    let k = |n: usize| (2.0 * PI * n as f64 / l as f64).cos();
    c.quad - c.hop * (k(n0) + k(n1))
}

fn momenta(l: usize) -> impl Iterator<Item = (usize, usize)> {
    (0..l).flat_map(move |a| (0..l).map(move |b| (a, b)))
}

/// `log Z = (V/2) ln pi - (1/2) sum_n ln lambda_n` (for the tutorial normalisation
/// lambda_n = khat^2 + m2).
pub fn log_z(c: &Couplings, l: usize) -> f64 {
    let v = (l * l) as f64;
    0.5 * v * PI.ln() - 0.5 * momenta(l).map(|(a, b)| eigenvalue(c, l, a, b).ln()).sum::<f64>()
}

/// Exact means of the observables `(M, abs_M, chi2, E, phi2)`. With covariance C = (2K)^-1:
/// `<M^2> = V / (2 lambda_0)`, `<phi^2> = (1/V) sum_n 1/(2 lambda_n)`,
/// `E = (1/(2V)) sum_n sum_mu cos(k_mu) / (2 lambda_n)`, and M is normal with mean 0, so
/// `<|M|> = sqrt(2/pi) sqrt(<M^2>)`.
pub fn known_means(c: &Couplings, l: usize) -> Vec<(String, f64)> {
    let v = (l * l) as f64;
    let m2_mean = v / (2.0 * eigenvalue(c, l, 0, 0));
    let (mut phi2, mut e) = (0.0, 0.0);
    for (a, b) in momenta(l) {
        let g = 1.0 / (2.0 * eigenvalue(c, l, a, b));
        phi2 += g;
        let k = |n: usize| (2.0 * PI * n as f64 / l as f64).cos();
        e += (k(a) + k(b)) * g;
    }
    vec![
        ("M".into(), 0.0),
        ("abs_M".into(), (2.0 / PI).sqrt() * m2_mean.sqrt() / v),
        ("chi2".into(), m2_mean / v),
        ("E".into(), e / (2.0 * v)),
        ("phi2".into(), phi2 / v),
    ]
}
