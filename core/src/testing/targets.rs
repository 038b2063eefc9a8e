//! Reference numbers for checking targets: composite Simpson quadrature (normalisers and
//! moments) and sample means with their Monte-Carlo standard error (exact samplers).

use crate::error::Result;
use crate::model::target::Target;
use crate::testing::{FD_STEP, fd_gradient, rel_error};

/// Relative error (as in [`crate::testing::rel_error`]) of a target's analytic gradient at `x`
/// against central finite differences of its `log_prob`; also checks that `log_prob_grad`
/// returns the same value as `log_prob`.
pub fn target_grad_error(target: &dyn Target, x: &[f64]) -> Result<f64> {
    let mut grad = vec![0.0; x.len()];
    let value = target.log_prob_grad(x, &mut grad)?;
    let plain = target.log_prob(x)?;
    if (value - plain).abs() > 1e-12 * (1.0 + plain.abs()) {
        return Err(crate::Error::Other(format!("log_prob_grad gives {value}, log_prob {plain}")));
    }
    let mut f = |v: &[f64]| target.log_prob(v).unwrap_or(f64::NAN);
    let numeric = fd_gradient(&mut f, x, &(0..x.len()).collect::<Vec<_>>(), FD_STEP);
    Ok(rel_error(&grad, &numeric))
}

/// Composite Simpson rule for `integral_a^b f` with `n` intervals (`n` is rounded up to even).
///
/// For the smooth, rapidly decaying integrands of this crate the error is far below 1e-10 once
/// the spacing resolves the narrowest feature a few dozen times.
pub fn simpson(f: &mut dyn FnMut(f64) -> f64, a: f64, b: f64, n: usize) -> f64 {
    let n = (n.max(2) + 1) & !1;
    let h = (b - a) / n as f64;
    let mut sum = f(a) + f(b);
    for i in 1..n {
        let w = if i % 2 == 1 { 4.0 } else { 2.0 };
        sum += w * f(a + i as f64 * h);
    }
    sum * h / 3.0
}

/// Sample mean of `values` and its Monte-Carlo standard error `sd / sqrt(n)` for independent
/// draws (sample standard deviation with the `n - 1` denominator).
pub fn mean_and_mcse(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / (n - 1.0);
    (mean, (var / n).sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simpson_integrates_the_normal_density_and_a_cubic_exactly() {
        let mut gauss = |x: f64| (-0.5 * x * x).exp();
        let z = simpson(&mut gauss, -12.0, 12.0, 400);
        assert!((z - (2.0 * std::f64::consts::PI).sqrt()).abs() < 1e-12, "{z}");
        // Simpson is exact for cubics, even with an odd interval count (rounded up).
        let mut cubic = |x: f64| x * x * x - 2.0 * x + 1.0;
        assert!((simpson(&mut cubic, 0.0, 2.0, 3) - 2.0).abs() < 1e-12);
    }

    #[test]
    fn mcse_of_a_known_sample() {
        let (m, se) = mean_and_mcse(&[1.0, 2.0, 3.0, 4.0]);
        assert_eq!(m, 2.5);
        // Sample variance 5/3, divided by n = 4.
        assert!((se - (5.0f64 / 12.0).sqrt()).abs() < 1e-15);
    }
}
