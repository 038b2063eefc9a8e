//! Multi-chain convergence diagnostics of Vehtari, Gelman, Simpson, Carpenter and Bürkner (2021),
//! "Rank-normalization, folding, and localization: an improved R-hat", computed exactly as
//! ArviZ 0.23 does (`az.rhat(method="rank")`, `az.ess(method="bulk" | "tail" | "mean")`,
//! `az.mcse(method="mean")`); `core/tests/arviz_agreement.rs` checks this against ArviZ's output.
//!
//! Input is one `Vec<f64>` of draws per chain, all of equal length. As in ArviZ, fewer than 4
//! draws (or fewer than 2 chains for R-hat) or any NaN draw gives NaN rather than an error.
//!
//! Shared steps:
//! - split: each chain is cut into a first and a last half of `n/2` draws (the middle draw of an
//!   odd-length chain is dropped);
//! - rank normalisation: pooled average ranks `r` of all `S` values (ties share their mean rank),
//!   mapped to `Phi^-1((r - 3/8) / (S + 1/4))`;
//! - ESS: multi-chain autocorrelation with Geyer's initial positive sequence, then his initial
//!   monotone sequence, `ESS = M N / tau` with `tau >= 1/log10(M N)`.

use super::lag_products::centred_lag_products;
use super::normal_quantile::normal_quantile;
use crate::error::{Error, Result};

/// Checks equal chain lengths; `Ok(false)` when the input is too small or has NaN (result NaN).
fn usable(chains: &[Vec<f64>], min_chains: usize) -> Result<bool> {
    let Some(first) = chains.first() else {
        return Ok(false);
    };
    if let Some(c) = chains.iter().find(|c| c.len() != first.len()) {
        return Err(Error::Dim(format!("chains of unequal length: {} and {} draws", first.len(), c.len())));
    }
    Ok(chains.len() >= min_chains && first.len() >= 4 && !chains.iter().flatten().any(|v| v.is_nan()))
}

/// Halves of every chain: first halves of all chains, then last halves.
fn split_chains(chains: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let n = chains[0].len();
    let half = n / 2;
    let firsts = chains.iter().map(|c| c[..half].to_vec());
    let lasts = chains.iter().map(|c| c[n - half..].to_vec());
    firsts.chain(lasts).collect()
}

/// Average ranks (1-based) of all values pooled over chains, in chain-major order.
fn pooled_average_ranks(chains: &[Vec<f64>]) -> Vec<f64> {
    let values: Vec<f64> = chains.iter().flatten().copied().collect();
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut ranks = vec![0.0; values.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i + 1;
        while j < order.len() && values[order[j]] == values[order[i]] {
            j += 1;
        }
        // Positions i..j (0-based) share ranks i+1..=j: their mean is (i + 1 + j) / 2.
        let rank = (i + 1 + j) as f64 / 2.0;
        for &k in &order[i..j] {
            ranks[k] = rank;
        }
        i = j;
    }
    ranks
}

/// Rank-normalised z-scores with the same chain layout as the input.
fn z_scale(chains: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let ranks = pooled_average_ranks(chains);
    let s = ranks.len() as f64;
    let mut it = ranks.into_iter().map(|r| normal_quantile((r - 0.375) / (s + 0.25)));
    chains.iter().map(|c| it.by_ref().take(c.len()).collect()).collect()
}

fn mean(x: &[f64]) -> f64 {
    x.iter().sum::<f64>() / x.len() as f64
}

/// Sample variance with `n - 1` in the denominator.
fn var_ddof1(x: &[f64]) -> f64 {
    let m = mean(x);
    x.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (x.len() as f64 - 1.0)
}

/// The median of all draws (average of the two middle values for an even count).
fn median(chains: &[Vec<f64>]) -> f64 {
    let mut v: Vec<f64> = chains.iter().flatten().copied().collect();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 { v[n / 2] } else { 0.5 * (v[n / 2 - 1] + v[n / 2]) }
}

/// The `p` quantile of all draws, linear interpolation between order statistics (R type 7).
fn quantile(chains: &[Vec<f64>], p: f64) -> f64 {
    let mut v: Vec<f64> = chains.iter().flatten().copied().collect();
    v.sort_by(f64::total_cmp);
    let h = (v.len() - 1) as f64 * p;
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(v.len() - 1);
    v[lo] + (h - lo as f64) * (v[hi] - v[lo])
}

/// Potential scale reduction of (already split/normalised) chains.
fn basic_rhat(chains: &[Vec<f64>]) -> f64 {
    let n = chains[0].len() as f64;
    let means: Vec<f64> = chains.iter().map(|c| mean(c)).collect();
    let within = chains.iter().map(|c| var_ddof1(c)).sum::<f64>() / chains.len() as f64;
    let between = n * var_ddof1(&means);
    ((between / within + n - 1.0) / n).sqrt()
}

/// Multi-chain ESS of a mean (Geyer's initial positive and monotone sequences).
fn basic_ess(chains: &[Vec<f64>]) -> f64 {
    let m = chains.len();
    let n = chains[0].len();
    let total = (m * n) as f64;
    let (lo, hi) =
        chains.iter().flatten().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    // numpy's float resolution: a constant input has ESS equal to its size.
    if hi - lo < 1e-15 {
        return total;
    }
    let nf = n as f64;
    let means: Vec<f64> = chains.iter().map(|c| mean(c)).collect();
    // Mean over chains of the biased autocovariance at each lag.
    let mut acov = vec![0.0; n];
    for (c, &cm) in chains.iter().zip(&means) {
        for (a, p) in acov.iter_mut().zip(centred_lag_products(c, cm)) {
            *a += p / nf;
        }
    }
    for a in acov.iter_mut() {
        *a /= m as f64;
    }
    let mean_var = acov[0] * nf / (nf - 1.0);
    let mut var_plus = mean_var * (nf - 1.0) / nf;
    if m > 1 {
        var_plus += var_ddof1(&means);
    }
    let rho = |t: usize| 1.0 - (mean_var - acov[t]) / var_plus;

    let mut rho_hat = vec![0.0; n];
    let mut rho_even = 1.0;
    let mut rho_odd = rho(1);
    rho_hat[0] = rho_even;
    rho_hat[1] = rho_odd;
    // Initial positive sequence: sum pairs while their sum stays positive.
    let mut t = 1;
    while t + 3 < n && rho_even + rho_odd > 0.0 {
        rho_even = rho(t + 1);
        rho_odd = rho(t + 2);
        if rho_even + rho_odd >= 0.0 {
            rho_hat[t + 1] = rho_even;
            rho_hat[t + 2] = rho_odd;
        }
        t += 2;
    }
    // ArviZ's `max_t = t - 2` may be -1; every index it uses is `max_t + 1 = last` or below.
    let last = t - 1;
    if rho_even > 0.0 {
        rho_hat[last] = rho_even;
    }
    // Initial monotone sequence: pair sums may not increase (`t <= max_t - 2`).
    let mut t = 1;
    while t + 3 <= last {
        if rho_hat[t + 1] + rho_hat[t + 2] > rho_hat[t - 1] + rho_hat[t] {
            rho_hat[t + 1] = (rho_hat[t - 1] + rho_hat[t]) / 2.0;
            rho_hat[t + 2] = rho_hat[t + 1];
        }
        t += 2;
    }
    let tau = -1.0 + 2.0 * rho_hat[..last].iter().sum::<f64>() + rho_hat[last];
    let tau = tau.max(1.0 / total.log10());
    if rho_hat.iter().any(|v| v.is_nan()) { f64::NAN } else { total / tau }
}

/// Rank-normalised split R-hat: the larger of the bulk R-hat (of z-scaled split chains) and the
/// tail R-hat (of z-scaled `|x - median|`, the median over the split draws).
pub fn rhat(chains: &[Vec<f64>]) -> Result<f64> {
    if !usable(chains, 2)? {
        return Ok(f64::NAN);
    }
    let split = split_chains(chains);
    let bulk = basic_rhat(&z_scale(&split));
    let med = median(&split);
    let folded: Vec<Vec<f64>> = split.iter().map(|c| c.iter().map(|v| (v - med).abs()).collect()).collect();
    let tail = basic_rhat(&z_scale(&folded));
    // numpy's max propagates NaN.
    Ok(if bulk.is_nan() || tail.is_nan() { f64::NAN } else { bulk.max(tail) })
}

/// Bulk ESS: ESS of the rank-normalised split chains.
pub fn ess_bulk(chains: &[Vec<f64>]) -> Result<f64> {
    if !usable(chains, 1)? {
        return Ok(f64::NAN);
    }
    Ok(basic_ess(&z_scale(&split_chains(chains))))
}

/// ESS of the indicator `x <= q_p` (q_p the pooled type-7 quantile) on split chains.
fn ess_quantile(chains: &[Vec<f64>], p: f64) -> f64 {
    let q = quantile(chains, p);
    let indicator: Vec<Vec<f64>> =
        chains.iter().map(|c| c.iter().map(|&v| if v <= q { 1.0 } else { 0.0 }).collect()).collect();
    basic_ess(&split_chains(&indicator))
}

/// Tail ESS: the smaller of the 5 % and 95 % quantile ESS.
pub fn ess_tail(chains: &[Vec<f64>]) -> Result<f64> {
    if !usable(chains, 1)? {
        return Ok(f64::NAN);
    }
    let (lo, hi) = (ess_quantile(chains, 0.05), ess_quantile(chains, 0.95));
    Ok(if lo.is_nan() || hi.is_nan() { f64::NAN } else { lo.min(hi) })
}

/// ESS of the mean: ESS of the split chains, without rank normalisation.
pub fn ess_mean(chains: &[Vec<f64>]) -> Result<f64> {
    if !usable(chains, 1)? {
        return Ok(f64::NAN);
    }
    Ok(basic_ess(&split_chains(chains)))
}

/// Monte Carlo standard error of the mean: `sd / sqrt(ESS_mean)`, sd over all draws (n - 1).
pub fn mcse_mean(chains: &[Vec<f64>]) -> Result<f64> {
    if !usable(chains, 1)? {
        return Ok(f64::NAN);
    }
    let all: Vec<f64> = chains.iter().flatten().copied().collect();
    Ok(var_ddof1(&all).sqrt() / basic_ess(&split_chains(chains)).sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ties_share_their_average_rank() {
        let ranks = pooled_average_ranks(&[vec![3.0, 1.0, 3.0], vec![2.0, 3.0, 0.5]]);
        assert_eq!(ranks, vec![5.0, 2.0, 5.0, 3.0, 5.0, 1.0]);
    }

    #[test]
    fn odd_chains_lose_their_middle_draw() {
        let split = split_chains(&[vec![1.0, 2.0, 3.0, 4.0, 5.0], vec![6.0, 7.0, 8.0, 9.0, 10.0]]);
        assert_eq!(split, vec![vec![1.0, 2.0], vec![6.0, 7.0], vec![4.0, 5.0], vec![9.0, 10.0]]);
    }

    #[test]
    fn type7_quantile_and_median() {
        let c = [vec![4.0, 1.0], vec![3.0, 2.0]];
        assert_eq!(median(&c), 2.5);
        // h = 3 * 0.05 = 0.15 between 1 and 2.
        assert!((quantile(&c, 0.05) - 1.15).abs() < 1e-15);
        assert!((quantile(&c, 0.95) - 3.85).abs() < 1e-15);
    }

    #[test]
    fn small_or_nan_input_gives_nan_and_ragged_input_an_error() {
        let short = [vec![1.0, 2.0, 3.0], vec![1.0, 2.0, 3.0]];
        assert!(rhat(&short).unwrap().is_nan());
        assert!(ess_bulk(&short).unwrap().is_nan());
        let one_chain = [vec![1.0, 2.0, 3.0, 5.0, 4.0]];
        assert!(rhat(&one_chain).unwrap().is_nan());
        assert!(ess_bulk(&one_chain).unwrap().is_finite());
        let with_nan = [vec![1.0, 2.0, f64::NAN, 5.0, 4.0]];
        assert!(mcse_mean(&with_nan).unwrap().is_nan());
        assert!(rhat(&[vec![1.0; 5], vec![1.0; 6]]).is_err());
    }

    #[test]
    fn constant_chains_have_full_ess() {
        let c = [vec![2.0; 10], vec![2.0; 10]];
        assert_eq!(ess_mean(&c).unwrap(), 20.0);
        assert_eq!(mcse_mean(&c).unwrap(), 0.0);
    }
}
