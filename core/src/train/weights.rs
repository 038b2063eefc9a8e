//! Log-weight arithmetic shared by the objectives: log-sum-exp, self-normalised weights and the
//! Kish effective sample size, all stable for log weights of any magnitude.

/// `log sum_i exp(v_i)`; `-inf` for an empty slice or when every entry is `-inf`.
pub fn log_sum_exp(v: &[f64]) -> f64 {
    let m = v.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    if !m.is_finite() {
        return m;
    }
    m + v.iter().map(|a| (a - m).exp()).sum::<f64>().ln()
}

/// `exp(v_i) / sum_j exp(v_j)`.
pub fn softmax(v: &[f64]) -> Vec<f64> {
    let l = log_sum_exp(v);
    v.iter().map(|a| (a - l).exp()).collect()
}

/// Kish ESS as a fraction of the batch: `exp(2 LSE(log w) - LSE(2 log w)) / N`.
pub fn kish_ess(log_w: &[f64]) -> f64 {
    if log_w.is_empty() {
        return 0.0;
    }
    let doubled: Vec<f64> = log_w.iter().map(|w| 2.0 * w).collect();
    (2.0 * log_sum_exp(log_w) - log_sum_exp(&doubled)).exp() / log_w.len() as f64
}

/// Arithmetic mean (0 for an empty slice).
pub fn mean(v: &[f64]) -> f64 {
    if v.is_empty() { 0.0 } else { v.iter().sum::<f64>() / v.len() as f64 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_weights_have_full_ess_at_any_scale() {
        assert!((kish_ess(&[1000.0; 8]) - 1.0).abs() < 1e-12);
        assert!((kish_ess(&[-1000.0; 8]) - 1.0).abs() < 1e-12);
        // One weight dominating: ESS -> 1/N.
        assert!((kish_ess(&[0.0, -800.0, -800.0, -800.0]) - 0.25).abs() < 1e-12);
    }

    #[test]
    fn log_sum_exp_and_softmax_agree_with_direct_sums() {
        let v = [0.3, -1.2, 2.5];
        let direct: f64 = v.iter().map(|a: &f64| a.exp()).sum::<f64>().ln();
        assert!((log_sum_exp(&v) - direct).abs() < 1e-14);
        let s = softmax(&v);
        assert!((s.iter().sum::<f64>() - 1.0).abs() < 1e-14);
        assert!((s[2] - 2.5f64.exp() / direct.exp()).abs() < 1e-14);
        assert_eq!(log_sum_exp(&[f64::NEG_INFINITY; 2]), f64::NEG_INFINITY);
    }
}
