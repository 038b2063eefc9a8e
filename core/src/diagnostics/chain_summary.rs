//! Per-quantity statistics of multi-chain draws for `summary.json`: mean, sd, MCSE, bulk/tail
//! ESS, R-hat ([`super::convergence`]) and Wolff's `tau_int` ([`super::autocorr`], convention A,
//! the chains as replicas of one series). The JSON shape is in `crate::output::summary`.

use rayon::prelude::*;

use super::{autocorr, convergence};
use crate::error::{Error, Result};
#[cfg(test)]
use crate::output::chains::ChainCsv;
use crate::output::summary::{Quantities, QuantitySummary};

/// Summary of one quantity from its draws in each chain (equal lengths).
pub fn summarize_quantity(chains: &[Vec<f64>]) -> Result<QuantitySummary> {
    let all: Vec<f64> = chains.iter().flatten().copied().collect();
    let n = all.len() as f64;
    let mean = all.iter().sum::<f64>() / n;
    let sd = (all.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
    let tau_int = match autocorr::tau_int(chains) {
        Ok(t) => t.tau_int,
        // Non-finite draws or chains too short leave tau_int undefined, not the whole summary.
        Err(Error::NonFinite(_) | Error::Dim(_)) => f64::NAN,
        Err(e) => return Err(e),
    };
    Ok(QuantitySummary {
        mean,
        sd,
        mcse_mean: convergence::mcse_mean(chains)?,
        ess_bulk: convergence::ess_bulk(chains)?,
        ess_tail: convergence::ess_tail(chains)?,
        rhat: convergence::rhat(chains)?,
        tau_int,
    })
}

/// Summaries of named quantities from per-chain rows: `rows[chain][draw][k]` is quantity
/// `names[k]`. Quantities are processed in parallel.
pub fn summarize_rows<R: AsRef<[Vec<f64>]> + Sync>(names: &[String], rows: &[R]) -> Result<Quantities> {
    let draws = rows.first().map_or(0, |c| c.as_ref().len());
    for (c, chain) in rows.iter().map(AsRef::as_ref).enumerate() {
        crate::error::check_dim(&format!("draws in chain {c}"), chain.len(), draws)?;
        if let Some(row) = chain.iter().find(|r| r.len() != names.len()) {
            return Err(Error::Dim(format!("chain {c}: row of {} values for {} names", row.len(), names.len())));
        }
    }
    let summaries = (0..names.len())
        .into_par_iter()
        .map(|k| {
            let series: Vec<Vec<f64>> =
                rows.iter().map(|chain| chain.as_ref().iter().map(|r| r[k]).collect()).collect();
            summarize_quantity(&series)
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Quantities(names.iter().cloned().zip(summaries).collect()))
}

#[cfg(test)]
/// Summaries of every quantity column (all but the `...__` sampler columns) of chain files.
pub fn summarize_chain_files(chains: &[ChainCsv]) -> Result<Quantities> {
    let Some(first) = chains.first() else {
        return Err(Error::Dim("no chains to summarise".into()));
    };
    if let Some(c) = chains.iter().find(|c| c.columns != first.columns) {
        return Err(Error::Dim(format!("chain files with different columns: {:?} and {:?}", first.columns, c.columns)));
    }
    let keep: Vec<usize> = (0..first.columns.len()).filter(|&j| !first.columns[j].ends_with("__")).collect();
    let names: Vec<String> = keep.iter().map(|&j| first.columns[j].clone()).collect();
    let rows: Vec<Vec<Vec<f64>>> =
        chains.iter().map(|c| c.rows.iter().map(|r| keep.iter().map(|&j| r[j]).collect()).collect()).collect();
    summarize_rows(&names, &rows)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::output::chains::{ChainMeta, ChainWriter, read_chain_csv};
    use crate::rng;
    use rand::Rng as _;

    fn temp_dir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("bootflow-chain-summary-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// `n_chains` chains of `draws` standard normal rows of `dim` numbers.
    pub(crate) fn normal_chains(n_chains: usize, draws: usize, dim: usize, seed: u64) -> Vec<Vec<Vec<f64>>> {
        (0..n_chains)
            .map(|c| {
                let mut r = rng::stream(seed, c as u64);
                (0..draws).map(|_| (0..dim).map(|_| r.sample(rand_distr::StandardNormal)).collect()).collect()
            })
            .collect()
    }

    #[test]
    fn quantity_summary_uses_the_diagnostics() {
        let rows = normal_chains(4, 2000, 1, 8);
        let series: Vec<Vec<f64>> = rows.iter().map(|c| c.iter().map(|r| r[0]).collect()).collect();
        let q = summarize_quantity(&series).unwrap();
        assert_eq!(q.rhat, convergence::rhat(&series).unwrap());
        assert_eq!(q.ess_bulk, convergence::ess_bulk(&series).unwrap());
        assert_eq!(q.ess_tail, convergence::ess_tail(&series).unwrap());
        assert_eq!(q.mcse_mean, convergence::mcse_mean(&series).unwrap());
        let t = autocorr::tau_int(&series).unwrap();
        assert_eq!(q.tau_int, t.tau_int);
        // Independent N(0, 1) draws: mean 0 within 4 MCSE, tau_int 1/2 within 4 of its errors,
        // sd 1 within 4 of its standard error sqrt(1 / (2 N)).
        assert!(q.mean.abs() < 4.0 * q.mcse_mean, "{q:?}");
        assert!((q.tau_int - 0.5).abs() < 4.0 * t.tau_int_err, "{q:?}");
        assert!((q.sd - 1.0).abs() < 4.0 * (1.0f64 / 16000.0).sqrt(), "{q:?}");
    }

    #[test]
    fn chain_files_summarise_like_their_rows() {
        let dir = temp_dir();
        let rows = normal_chains(2, 40, 3, 5);
        let obs = vec!["r2".to_string()];
        let mut files = Vec::new();
        for (c, chain) in rows.iter().enumerate() {
            let path = dir.join(format!("chain_{c}.csv"));
            let meta = ChainMeta { method: "mis".into(), seed: 5, chain: c, config: serde_json::json!({}) };
            let mut w = ChainWriter::create(&path, &meta, 2, &obs).unwrap();
            for r in chain {
                w.write_draw(-0.5 * (r[0] * r[0] + r[1] * r[1]), 1.0, &r[..2], &r[2..]).unwrap();
            }
            files.push(read_chain_csv(&path).unwrap());
        }
        let from_files = summarize_chain_files(&files).unwrap();
        let names = vec!["x.1".to_string(), "x.2".to_string(), "r2".to_string()];
        assert_eq!(from_files, summarize_rows(&names, &rows).unwrap());
    }

    #[test]
    fn mismatched_input_is_an_error() {
        let names = vec!["x.1".to_string()];
        assert!(summarize_rows(&names, &[vec![vec![1.0]; 5], vec![vec![1.0]; 4]]).is_err());
        assert!(summarize_rows(&names, &[vec![vec![1.0, 2.0]; 5]]).is_err());
        assert!(summarize_chain_files(&[]).is_err());
    }
}
