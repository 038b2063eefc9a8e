//! Lagged sums of products of a centred series: by FFT, O(n log n) for all lags at once, or by
//! direct sums when only a few lags are needed.

use rustfft::FftPlanner;
use rustfft::num_complex::Complex;

/// `c[t] = sum_{i=0}^{n-1-t} (x[i] - center) (x[i+t] - center)` for `t = 0..n`.
///
/// Not normalised: callers divide by `n` (the biased autocovariance) or by the number of terms.
pub fn centred_lag_products(x: &[f64], center: f64) -> Vec<f64> {
    let n = x.len();
    if n == 0 {
        return Vec::new();
    }
    // Zero padding to at least 2n - 1 turns the FFT's circular correlation into the linear one.
    let m = (2 * n).next_power_of_two();
    let mut buf: Vec<Complex<f64>> = Vec::with_capacity(m);
    buf.extend(x.iter().map(|&v| Complex::new(v - center, 0.0)));
    buf.resize(m, Complex::new(0.0, 0.0));
    let mut planner = FftPlanner::<f64>::new();
    planner.plan_fft_forward(m).process(&mut buf);
    for v in buf.iter_mut() {
        *v = Complex::new(v.norm_sqr(), 0.0);
    }
    planner.plan_fft_inverse(m).process(&mut buf);
    let scale = 1.0 / m as f64;
    buf[..n].iter().map(|v| v.re * scale).collect()
}

/// The same sums for lags `0..=max_lag` only (clamped to `n - 1`), by direct summation:
/// O(n max_lag), cheaper than the FFT when few lags are needed.
pub fn centred_lag_products_direct(x: &[f64], center: f64, max_lag: usize) -> Vec<f64> {
    if x.is_empty() {
        return Vec::new();
    }
    let d: Vec<f64> = x.iter().map(|v| v - center).collect();
    (0..=max_lag.min(x.len() - 1)).map(|t| d[..d.len() - t].iter().zip(&d[t..]).map(|(a, b)| a * b).sum()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn direct(x: &[f64], center: f64) -> Vec<f64> {
        (0..x.len()).map(|t| (0..x.len() - t).map(|i| (x[i] - center) * (x[i + t] - center)).sum()).collect()
    }

    #[test]
    fn fft_matches_direct_sums() {
        // Lengths that are and are not powers of two, and a non-zero centre.
        for n in [1usize, 2, 7, 64, 333] {
            let x: Vec<f64> = (0..n).map(|i| ((i * 37 % 11) as f64).sin() + 0.1 * i as f64).collect();
            let got = centred_lag_products(&x, 0.7);
            let want = direct(&x, 0.7);
            let scale = want[0].abs().max(1.0);
            for (g, w) in got.iter().zip(&want) {
                assert!((g - w).abs() < 1e-12 * scale, "n={n}: {g} vs {w}");
            }
            let bounded = centred_lag_products_direct(&x, 0.7, 5);
            assert_eq!(bounded.len(), n.min(6));
            for (g, w) in bounded.iter().zip(&want) {
                assert!((g - w).abs() < 1e-12 * scale, "n={n}: {g} vs {w}");
            }
        }
    }

    #[test]
    fn empty_series_gives_no_lags() {
        assert!(centred_lag_products(&[], 0.0).is_empty());
        assert!(centred_lag_products_direct(&[], 0.0, 3).is_empty());
    }
}
