//! Weight arithmetic shared by the objectives: self-normalised weights and means. Log-sum-exp
//! and the Kish ESS are the diagnostics' ([`crate::diagnostics::importance`]).

use crate::diagnostics::importance::log_sum_exp;

/// `exp(v_i) / sum_j exp(v_j)`.
pub fn softmax(v: &[f64]) -> Vec<f64> {
    let l = log_sum_exp(v);
    v.iter().map(|a| (a - l).exp()).collect()
}

/// Arithmetic mean (0 for an empty slice).
pub fn mean(v: &[f64]) -> f64 {
    if v.is_empty() { 0.0 } else { v.iter().sum::<f64>() / v.len() as f64 }
}

#[cfg(test)]
mod tests {
    use super::*;

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
