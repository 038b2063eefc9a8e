//! Importance-weight diagnostics and estimates, all from log weights `log w = log p~(x) - log q(x)`
//! and computed in log space (weights routinely span hundreds of orders of magnitude).
//!
//! A log weight of `-inf` is a legal zero weight (the sample is outside the target's support);
//! NaN or `+inf` is an error.

use crate::error::{Error, Result};

/// `ln sum_i exp(v_i)`, stable for terms of any magnitude; `-inf` when every term is `-inf` (or
/// there are none), `+inf` when one is.
pub fn log_sum_exp(v: &[f64]) -> f64 {
    let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !max.is_finite() {
        return max;
    }
    max + v.iter().map(|a| (a - max).exp()).sum::<f64>().ln()
}

/// `log_sum_exp` of `f(v_i)`.
fn log_sum_exp_of(v: &[f64], f: impl Fn(f64) -> f64) -> f64 {
    log_sum_exp(&v.iter().map(|&a| f(a)).collect::<Vec<f64>>())
}

/// Checks that log weights are usable: non-empty, no NaN, no `+inf`, not all zero weights.
fn check_log_weights(log_w: &[f64]) -> Result<()> {
    if log_w.is_empty() {
        return Err(Error::Dim("importance weights: no samples".into()));
    }
    if let Some(i) = log_w.iter().position(|v| v.is_nan() || *v == f64::INFINITY) {
        return Err(Error::NonFinite(format!("log importance weight {} at sample {i}", log_w[i])));
    }
    if log_w.iter().all(|v| *v == f64::NEG_INFINITY) {
        return Err(Error::NonFinite("every importance weight is zero (all log weights are -inf)".into()));
    }
    Ok(())
}

/// Kish effective sample size as a fraction of N, in (0, 1]:
/// `(sum w)^2 / (N sum w^2) = exp(2 LSE(log w) - LSE(2 log w)) / N`.
pub fn kish_ess(log_w: &[f64]) -> Result<f64> {
    check_log_weights(log_w)?;
    let lse1 = log_sum_exp(log_w);
    let lse2 = log_sum_exp_of(log_w, |v| 2.0 * v);
    Ok((2.0 * lse1 - lse2 - (log_w.len() as f64).ln()).exp())
}

/// Forward effective sample size fraction from log weights of EXACT target samples:
/// `N^2 / (sum w * sum 1/w)`. It is 1 for q = p and falls towards 0 when q misses mass of p;
/// a zero weight (a target sample q cannot produce) makes it 0.
pub fn forward_ess(log_w: &[f64]) -> Result<f64> {
    check_log_weights(log_w)?;
    if log_w.contains(&f64::NEG_INFINITY) {
        return Ok(0.0);
    }
    let n = log_w.len() as f64;
    let lse = log_sum_exp(log_w);
    let lse_inv = log_sum_exp_of(log_w, |v| -v);
    Ok((2.0 * n.ln() - lse - lse_inv).exp())
}

/// An importance-sampling estimate of `log Z` with its delta-method standard error.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LogZ {
    /// Estimate of `ln Z`, the log normaliser of p~: `LSE(log w) - ln N`.
    pub log_z: f64,
    /// Delta-method standard error of `log_z`: `sqrt((1/ESS - 1)/N)`.
    pub se: f64,
    /// Kish ESS fraction of the same weights.
    pub ess: f64,
}

/// `log Z ~ LSE(log w) - ln N`; error `sqrt((1/ESS - 1)/N)` with ESS the Kish fraction (the delta
/// method for the log of a sample mean: `Var(w) / (N E[w]^2)` with sample moments).
pub fn log_z(log_w: &[f64]) -> Result<LogZ> {
    let ess = kish_ess(log_w)?;
    let n = log_w.len() as f64;
    let log_z = log_sum_exp(log_w) - n.ln();
    // Rounding can push ESS a hair above 1 for equal weights; the variance is then exactly 0.
    let se = ((1.0 / ess - 1.0).max(0.0) / n).sqrt();
    Ok(LogZ { log_z, se, ess })
}

/// A self-normalised importance-sampling estimate of an expectation with its standard error.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SnisEstimate {
    /// The estimate `sum w O / sum w`.
    pub mean: f64,
    /// Its delta-method standard error.
    pub se: f64,
}

/// `sum w O / sum w`, with the delta-method error `sqrt(sum wbar_i^2 (O_i - mean)^2)` where
/// `wbar` are the normalised weights. Samples of zero weight do not contribute (their `O` may be
/// anything but NaN).
pub fn snis(log_w: &[f64], values: &[f64]) -> Result<SnisEstimate> {
    check_log_weights(log_w)?;
    crate::error::check_dim("observable values", values.len(), log_w.len())?;
    if let Some(i) = values.iter().position(|v| v.is_nan()) {
        return Err(Error::NonFinite(format!("observable is NaN at sample {i}")));
    }
    let lse = log_sum_exp(log_w);
    let weighted = || log_w.iter().zip(values).filter(|(lw, _)| **lw > f64::NEG_INFINITY);
    let mean: f64 = weighted().map(|(lw, o)| (lw - lse).exp() * o).sum();
    let var: f64 = weighted().map(|(lw, o)| (2.0 * (lw - lse)).exp() * (o - mean).powi(2)).sum();
    if !mean.is_finite() {
        return Err(Error::NonFinite(format!("importance-sampling estimate is {mean}")));
    }
    Ok(SnisEstimate { mean, se: var.sqrt() })
}

/// Stationary acceptance rate of Metropolised independence sampling with proposal q:
/// `E_{x~p, y~q}[min(1, w(y)/w(x))]`, estimated from one set of flow samples (x by
/// self-normalised weights, y uniformly), in O(N log N): with the weights sorted, a sample's mean
/// acceptance is `(#{w_j >= w_i} + sum_{w_j < w_i} w_j / w_i) / N`. It is 1 for q = p.
pub fn mis_acceptance(log_w: &[f64]) -> Result<f64> {
    check_log_weights(log_w)?;
    let max = log_w.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut w: Vec<f64> = log_w.iter().map(|v| (v - max).exp()).collect();
    w.sort_by(f64::total_cmp);
    let (n, total) = (w.len(), w.iter().sum::<f64>());
    let (mut acc, mut below, mut i) = (0.0, 0.0, 0);
    while i < n {
        // Ties accept each other with probability 1: treat a run of equal weights together.
        let mut end = i;
        while end < n && w[end] == w[i] {
            end += 1;
        }
        if w[i] > 0.0 {
            let a = ((n - i) as f64 + below / w[i]) / n as f64;
            acc += (end - i) as f64 * w[i] / total * a;
        }
        below += w[i..end].iter().sum::<f64>();
        i = end;
    }
    Ok(acc.min(1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_weights_have_full_ess_at_any_scale() {
        assert!((kish_ess(&[1000.0; 8]).unwrap() - 1.0).abs() < 1e-12);
        assert!((kish_ess(&[-1000.0; 8]).unwrap() - 1.0).abs() < 1e-12);
        // One weight dominating: ESS -> 1/N.
        assert!((kish_ess(&[0.0, -800.0, -800.0, -800.0]).unwrap() - 0.25).abs() < 1e-12);
    }
    use crate::rng;
    use rand::Rng as _;

    #[test]
    fn equal_weights_are_fully_efficient() {
        let log_w = vec![-3.7; 1000];
        assert!((kish_ess(&log_w).unwrap() - 1.0).abs() < 1e-12);
        assert!((forward_ess(&log_w).unwrap() - 1.0).abs() < 1e-12);
        // An exact proposal of a normalised target: log Z = 0 with zero error.
        let z = log_z(&vec![0.0; 1000]).unwrap();
        assert!(z.log_z.abs() < 1e-12);
        assert_eq!(z.se, 0.0);
    }

    #[test]
    fn analytic_small_cases() {
        // Weights (1, 3): Kish (4^2)/(2*10) = 0.8; forward 4 / (4 * (1 + 1/3)) = 0.75;
        // log Z = ln 2 with se sqrt((1/0.8 - 1)/2).
        let log_w = [0.0, 3f64.ln()];
        assert!((kish_ess(&log_w).unwrap() - 0.8).abs() < 1e-14);
        assert!((forward_ess(&log_w).unwrap() - 0.75).abs() < 1e-14);
        let z = log_z(&log_w).unwrap();
        assert!((z.log_z - 2f64.ln()).abs() < 1e-14);
        assert!((z.se - (0.25f64 / 2.0).sqrt()).abs() < 1e-14);
        // One weight carrying everything among N: Kish ESS = 1/N.
        let mut log_w = vec![f64::NEG_INFINITY; 10];
        log_w[3] = 5.0;
        assert!((kish_ess(&log_w).unwrap() - 0.1).abs() < 1e-14);
        assert_eq!(forward_ess(&log_w).unwrap(), 0.0);
    }

    #[test]
    fn huge_log_weights_do_not_overflow() {
        let log_w = [1000.0, 1000.0 + 3f64.ln()];
        assert!((kish_ess(&log_w).unwrap() - 0.8).abs() < 1e-12);
        assert!((log_z(&log_w).unwrap().log_z - (1000.0 + 2f64.ln())).abs() < 1e-12);
    }

    #[test]
    fn nan_and_degenerate_weights_are_errors() {
        assert!(kish_ess(&[0.0, f64::NAN]).is_err());
        assert!(kish_ess(&[0.0, f64::INFINITY]).is_err());
        assert!(kish_ess(&[]).is_err());
        assert!(log_z(&[f64::NEG_INFINITY; 3]).is_err());
        assert!(snis(&[0.0, 0.0], &[1.0, f64::NAN]).is_err());
        assert!(snis(&[0.0, 0.0], &[1.0]).is_err());
    }

    #[test]
    fn snis_weighted_mean_and_error() {
        // Weights (1, 3) on values (0, 4): mean 3; wbar = (1/4, 3/4);
        // se^2 = (1/16) 9 + (9/16) 1 = 18/16. A zero-weight sample with an infinite value is ignored.
        let est = snis(&[0.0, 3f64.ln(), f64::NEG_INFINITY], &[0.0, 4.0, f64::INFINITY]).unwrap();
        assert!((est.mean - 3.0).abs() < 1e-14);
        assert!((est.se - (18.0f64 / 16.0).sqrt()).abs() < 1e-14);
    }

    /// q = N(0, s^2), p~ = c N(0, 1): E_q[w] = c and E_q[w^2] = c^2 s^2 / sqrt(2 s^2 - 1), so the
    /// Kish fraction tends to sqrt(2 s^2 - 1) / s^2 and log Z to ln c.
    #[test]
    fn gaussian_proposal_matches_closed_form() {
        let (s, c, n) = (1.5f64, 3.0f64, 200_000usize);
        let mut r = rng::stream(11, 0);
        let log_w: Vec<f64> = (0..n)
            .map(|_| {
                let x = s * r.sample::<f64, _>(rand_distr::StandardNormal);
                let log_p = c.ln() - 0.5 * x * x - 0.5 * (2.0 * std::f64::consts::PI).ln();
                let log_q = -0.5 * (x / s).powi(2) - s.ln() - 0.5 * (2.0 * std::f64::consts::PI).ln();
                log_p - log_q
            })
            .collect();
        // Delta-method error of the Kish ratio m1^2/m2 from the sample moments of (w, w^2).
        let w: Vec<f64> = log_w.iter().map(|v| (v - c.ln()).exp()).collect();
        let nf = n as f64;
        let m1 = w.iter().sum::<f64>() / nf;
        let m2 = w.iter().map(|v| v * v).sum::<f64>() / nf;
        let (mut v11, mut v12, mut v22) = (0.0, 0.0, 0.0);
        for v in &w {
            let (a, b) = (v - m1, v * v - m2);
            v11 += a * a;
            v12 += a * b;
            v22 += b * b;
        }
        let (g1, g2) = (2.0 * m1 / m2, -m1 * m1 / (m2 * m2));
        let ess_se = ((g1 * g1 * v11 + 2.0 * g1 * g2 * v12 + g2 * g2 * v22) / (nf * nf)).sqrt();
        let want_ess = (2.0 * s * s - 1.0).sqrt() / (s * s);
        let got_ess = kish_ess(&log_w).unwrap();
        // 4 standard errors of the estimator.
        assert!((got_ess - want_ess).abs() < 4.0 * ess_se, "{got_ess} vs {want_ess} (se {ess_se})");
        let z = log_z(&log_w).unwrap();
        assert!((z.log_z - c.ln()).abs() < 4.0 * z.se, "{} vs {} (se {})", z.log_z, c.ln(), z.se);
        // The reported error is the delta-method one: sqrt((1/ESS - 1)/N) at the true ESS.
        let want_se = ((1.0 / want_ess - 1.0) / nf).sqrt();
        assert!((z.se / want_se - 1.0).abs() < 0.05, "{} vs {want_se}", z.se);
        // Self-normalised E_p[x^2] = 1, with x recovered from log w = ln c - x^2/2 + x^2/(2 s^2) + ln s.
        let x2: Vec<f64> = log_w.iter().map(|lw| (lw - c.ln() - s.ln()) / (0.5 / (s * s) - 0.5)).collect();
        let est = snis(&log_w, &x2).unwrap();
        assert!((est.mean - 1.0).abs() < 4.0 * est.se, "{est:?}");
    }

    /// Weights w and 1/w swap the roles of the two sums, leaving the value unchanged; and the
    /// log-space result equals the direct formula.
    #[test]
    fn forward_ess_is_symmetric_under_inverting_weights() {
        let log_w = [0.3, -1.2, 2.5, 0.0];
        let inv: Vec<f64> = log_w.iter().map(|v| -v).collect();
        let a = forward_ess(&log_w).unwrap();
        assert!((a - forward_ess(&inv).unwrap()).abs() < 1e-14);
        let w: Vec<f64> = log_w.iter().map(|v: &f64| v.exp()).collect();
        let direct = 16.0 / (w.iter().sum::<f64>() * w.iter().map(|v| 1.0 / v).sum::<f64>());
        assert!((a - direct).abs() < 1e-14);
    }

    #[test]
    fn mis_acceptance_matches_the_pairwise_sum() {
        let mut r = rng::stream(3, 0);
        let mut log_w: Vec<f64> = (0..200).map(|_| 3.0 * r.sample::<f64, _>(rand_distr::StandardNormal)).collect();
        log_w[7] = log_w[9]; // a tie
        log_w[11] = f64::NEG_INFINITY;
        let lse = log_sum_exp(&log_w);
        let n = log_w.len() as f64;
        let brute: f64 = log_w
            .iter()
            .map(|&a| {
                let mean_a: f64 = log_w.iter().map(|&b| (b - a).exp().min(1.0)).sum::<f64>() / n;
                if a == f64::NEG_INFINITY { 0.0 } else { (a - lse).exp() * mean_a }
            })
            .sum();
        assert!((mis_acceptance(&log_w).unwrap() - brute).abs() < 1e-12, "{brute}");
        assert!((mis_acceptance(&[2.0; 50]).unwrap() - 1.0).abs() < 1e-15);
        // Weights (1, 3): 1/4 * (1 + 1)/2 + 3/4 * (1 + 1/3)/2 = 3/4.
        assert!((mis_acceptance(&[0.0, 3f64.ln()]).unwrap() - 0.75).abs() < 1e-15);
        assert!(mis_acceptance(&[0.0, f64::NAN]).is_err());
    }
}
