//! Integrated autocorrelation time by Wolff's Gamma method (U. Wolff, "Monte Carlo errors with
//! less errors", Comput. Phys. Commun. 156 (2004) 143), for the mean of one observable.
//!
//! Convention A: `tau_int = 1/2 + sum_{t=1}^{W} rho(t)`, so independent draws give 1/2 and the
//! error of the mean is `sqrt(2 tau_int Gamma(0) / N)`. (Convention B, `1 + 2 sum rho`, is twice
//! this; ArviZ's ESS is `N / tau_B`.)
//!
//! Window: the smallest `W` with `g(W) = exp(-W/tau(W)) - tau(W)/sqrt(W N) < 0`, where
//! `tau(W) = S / ln((2 tau_int(W) + 1) / (2 tau_int(W) - 1))` and `S = 1.5`; it balances the
//! truncation bias against the statistical error. Gamma is then corrected for the bias of
//! subtracting the estimated mean (`Gamma(t) += C_W / N`), and the error of tau_int is
//! `2 tau_int sqrt((W + 1/2 - tau_int) / N)` (Wolff's eq. 42).
//!
//! Several chains are treated as Wolff's replicas: deviations are taken from the common mean and
//! lag products are summed over chains before normalising by `N - R t`.

use super::lag_products::{centred_lag_products, centred_lag_products_direct};
use crate::error::{Error, Result};

/// Wolff's default window factor S.
pub const WOLFF_S: f64 = 1.5;

/// Result of the Gamma-method analysis of one observable.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TauInt {
    /// Mean over all draws of all chains.
    pub mean: f64,
    /// Error of `mean`: `sqrt(2 tau_int Gamma(0) / N)`.
    pub mean_err: f64,
    /// Integrated autocorrelation time, convention A (1/2 for independent draws).
    pub tau_int: f64,
    /// Statistical error of `tau_int`.
    pub tau_int_err: f64,
    /// Summation window W.
    pub window: usize,
    /// True when no window satisfied the criterion below half the shortest chain (the chains are
    /// too short for their autocorrelation; `tau_int` is then a lower estimate).
    pub window_capped: bool,
    /// Bias-corrected variance Gamma(0).
    pub gamma0: f64,
}

/// Gamma-method analysis of the draws of one observable in one or more chains (replicas).
///
/// Errors for no draws, a chain shorter than 2 draws, or any non-finite draw.
pub fn tau_int(chains: &[Vec<f64>]) -> Result<TauInt> {
    let r = chains.len();
    if r == 0 || chains.iter().any(|c| c.len() < 2) {
        return Err(Error::Dim("autocorrelation analysis needs chains of at least 2 draws".into()));
    }
    if let Some((ci, i)) =
        chains.iter().enumerate().find_map(|(ci, c)| c.iter().position(|v| !v.is_finite()).map(|i| (ci, i)))
    {
        return Err(Error::NonFinite(format!("draw {i} of chain {ci} is {}", chains[ci][i])));
    }
    let n: usize = chains.iter().map(Vec::len).sum();
    let nf = n as f64;
    let mean = chains.iter().flatten().sum::<f64>() / nf;
    let t_max = chains.iter().map(Vec::len).min().unwrap_or(0) / 2;

    // Short autocorrelations (the common case) need few lags: direct sums over a bounded window
    // first, and the all-lags FFT only when the window is not found within it.
    let mut gamma = gamma_function(chains, mean, t_max.min(DIRECT_LAGS));
    if gamma[0] <= 0.0 {
        // No fluctuations: the mean is exact and there is nothing to correlate.
        return Ok(TauInt {
            mean,
            mean_err: 0.0,
            tau_int: 0.5,
            tau_int_err: 0.0,
            window: 0,
            window_capped: false,
            gamma0: 0.0,
        });
    }

    let (mut window, mut window_capped) = choose_window(&gamma, nf);
    if window_capped && t_max > DIRECT_LAGS {
        gamma = gamma_function(chains, mean, t_max);
        (window, window_capped) = choose_window(&gamma, nf);
    }
    // Bias correction of Gamma for the estimated mean, then tau_int at the chosen window.
    let c_w = gamma[0] + 2.0 * gamma[1..=window].iter().sum::<f64>();
    let shift = c_w / nf;
    let gamma0 = gamma[0] + shift;
    let c_w = gamma0 + 2.0 * gamma[1..=window].iter().map(|g| g + shift).sum::<f64>();
    let tau = c_w / (2.0 * gamma0);
    let tau_err = 2.0 * tau * ((window as f64 + 0.5 - tau).max(0.0) / nf).sqrt();
    Ok(TauInt {
        mean,
        mean_err: (c_w.max(0.0) / nf).sqrt(),
        tau_int: tau,
        tau_int_err: tau_err,
        window,
        window_capped,
        gamma0,
    })
}

/// Lags summed directly before falling back to the FFT.
const DIRECT_LAGS: usize = 64;

/// `Gamma(t)` for `t = 0..=max_lag`: lag products about the common mean summed over chains, over
/// `N - R t` (the number of products).
fn gamma_function(chains: &[Vec<f64>], mean: f64, max_lag: usize) -> Vec<f64> {
    let mut gamma = vec![0.0; max_lag + 1];
    for c in chains {
        let prods = if max_lag <= DIRECT_LAGS {
            centred_lag_products_direct(c, mean, max_lag)
        } else {
            centred_lag_products(c, mean)
        };
        for (g, p) in gamma.iter_mut().zip(&prods) {
            *g += p;
        }
    }
    let n: usize = chains.iter().map(Vec::len).sum();
    for (t, g) in gamma.iter_mut().enumerate() {
        *g /= (n - chains.len() * t) as f64;
    }
    gamma
}

/// Wolff's automatic window on the uncorrected Gamma; returns `(W, capped)`.
fn choose_window(gamma: &[f64], n: f64) -> (usize, bool) {
    let t_max = gamma.len() - 1;
    let mut tau_w = 0.5;
    for w in 1..=t_max {
        tau_w += gamma[w] / gamma[0];
        let tau =
            if tau_w <= 0.5 { f64::MIN_POSITIVE } else { WOLFF_S / ((2.0 * tau_w + 1.0) / (2.0 * tau_w - 1.0)).ln() };
        let g = (-(w as f64) / tau).exp() - tau / (w as f64 * n).sqrt();
        if g < 0.0 {
            return (w, false);
        }
    }
    (t_max, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng;
    use rand::Rng as _;

    /// Stationary AR(1) with unit marginal variance: tau_int = (1 + phi) / (2 (1 - phi)).
    fn ar1(phi: f64, n: usize, seed: u64, stream: u64) -> Vec<f64> {
        let mut r = rng::stream(seed, stream);
        let mut x: f64 = r.sample(rand_distr::StandardNormal);
        let scale = (1.0 - phi * phi).sqrt();
        (0..n)
            .map(|_| {
                let e: f64 = r.sample(rand_distr::StandardNormal);
                x = phi * x + scale * e;
                x
            })
            .collect()
    }

    #[test]
    fn ar1_tau_matches_theory_within_its_error() {
        for (phi, stream) in [(0.5, 0), (0.9, 1), (0.97, 2)] {
            let x = ar1(phi, 100_000, 5, stream);
            let res = tau_int(std::slice::from_ref(&x)).unwrap();
            let want = 0.5 * (1.0 + phi) / (1.0 - phi);
            // 4 of its own error estimates.
            assert!((res.tau_int - want).abs() < 4.0 * res.tau_int_err, "phi {phi}: {res:?} vs {want}");
            assert!(!res.window_capped);
            // The error of the mean is consistent with sqrt(2 tau Gamma(0) / N) at the truth
            // (Gamma(0) = 1) to the accuracy of tau_int itself.
            let want_err = (2.0 * want / 100_000.0f64).sqrt();
            let rel_tol = 4.0 * res.tau_int_err / want / 2.0 + 4.0 * (2.0f64 / 100_000.0).sqrt();
            assert!((res.mean_err / want_err - 1.0).abs() < rel_tol, "phi {phi}: {} vs {want_err}", res.mean_err);
        }
    }

    #[test]
    fn independent_draws_give_one_half() {
        let mut r = rng::stream(9, 0);
        let x: Vec<f64> = (0..100_000).map(|_| r.sample(rand_distr::StandardNormal)).collect();
        let res = tau_int(&[x]).unwrap();
        assert!((res.tau_int - 0.5).abs() < 4.0 * res.tau_int_err, "{res:?}");
    }

    #[test]
    fn replicas_pool_like_one_long_chain() {
        let chains: Vec<Vec<f64>> = (0..8).map(|s| ar1(0.8, 20_000, 21, s)).collect();
        let res = tau_int(&chains).unwrap();
        let want = 0.5 * 1.8 / 0.2;
        assert!((res.tau_int - want).abs() < 4.0 * res.tau_int_err, "{res:?} vs {want}");
    }

    /// The reported error of the mean is calibrated: over many independent chains, the spread
    /// of chain means matches the typical reported error.
    #[test]
    fn mean_error_is_calibrated_across_chains() {
        let k = 200;
        let results: Vec<TauInt> = (0..k).map(|s| tau_int(&[ar1(0.7, 5_000, 33, s)]).unwrap()).collect();
        let z2: f64 = results.iter().map(|r| (r.mean / r.mean_err).powi(2)).sum::<f64>() / k as f64;
        // Mean of k squared z-scores: 1 +- sqrt(2/k) = 0.1; allow 4 of those.
        assert!((z2 - 1.0).abs() < 4.0 * (2.0 / k as f64).sqrt(), "mean z^2 = {z2}");
    }

    #[test]
    fn constant_series_and_bad_input() {
        let res = tau_int(&[vec![2.0; 50]]).unwrap();
        assert_eq!((res.mean, res.mean_err, res.tau_int), (2.0, 0.0, 0.5));
        assert!(tau_int(&[]).is_err());
        assert!(tau_int(&[vec![1.0]]).is_err());
        assert!(tau_int(&[vec![1.0, f64::NAN, 2.0]]).is_err());
    }
}
