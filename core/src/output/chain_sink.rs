//! Where the draws of a sampling run go as they are made: one CmdStan-style CSV per chain
//! (`chain_1.csv`, ...; each row written and flushed whole, so a killed run leaves complete rows)
//! when the run has a directory, and, in memory, the quantities (coordinates, then the target's
//! observables) with each draw's log-density and acceptance statistic, for the summary and for
//! front ends that hand the draws over as arrays. Chains may report from different threads; each
//! chain has its own lock.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::Target;
use crate::diagnostics::chain_summary::summarize_rows;
use crate::error::{Error, Result, ResultExt};
use crate::output::chains::{ChainMeta, ChainWriter, column_names};
use crate::output::summary::Quantities;

/// The path of chain `c` (0-based) of a run in `dir`.
pub fn chain_path(dir: &Path, c: usize) -> PathBuf {
    dir.join(format!("chain_{}.csv", c + 1))
}

/// The open file (if any) and the kept rows of one chain.
struct ChainRows {
    writer: Option<ChainWriter>,
    draws: ChainDraws,
}

/// The draws of one chain, in order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ChainDraws {
    /// One row per draw: coordinates then observables.
    pub rows: Vec<Vec<f64>>,
    /// Log-density of each draw.
    pub lp: Vec<f64>,
    /// Acceptance statistic of each draw.
    pub accept_stat: Vec<f64>,
}

/// Every chain's draws with the names of the quantities in their rows.
#[derive(Clone, Debug, PartialEq)]
pub struct Draws {
    /// The target's dimension: the first `dim` entries of a row are the coordinates.
    pub dim: usize,
    /// Names of the quantities of a row (`x[1]`, ..., then the observables).
    pub names: Vec<String>,
    /// One entry per chain.
    pub chains: Vec<ChainDraws>,
}

/// Chain files and in-memory rows of every chain.
pub struct ChainSink<'a> {
    target: &'a dyn Target,
    names: Vec<String>,
    n_observables: usize,
    chains: Vec<Mutex<ChainRows>>,
}

impl<'a> ChainSink<'a> {
    /// Creates `chain_1.csv ... chain_N.csv` in `dir` with their headers; with no `dir` the
    /// draws are only kept in memory.
    pub fn create(
        dir: Option<&Path>,
        target: &'a dyn Target,
        method: &str,
        seed: u64,
        n_chains: usize,
        draws: usize,
        config: &serde_json::Value,
    ) -> Result<Self> {
        let dim = target.dim();
        let observables = target.observable_names();
        let columns = column_names(dim, &observables).context("the target's observables")?;
        let names = columns[2..].to_vec();
        let chains = (0..n_chains)
            .map(|chain| {
                let meta = ChainMeta { method: method.to_string(), seed, chain, config: config.clone() };
                let writer =
                    dir.map(|d| ChainWriter::create(&chain_path(d, chain), &meta, dim, &observables)).transpose()?;
                let kept = ChainDraws {
                    rows: Vec::with_capacity(draws),
                    lp: Vec::with_capacity(draws),
                    accept_stat: Vec::with_capacity(draws),
                };
                Ok(Mutex::new(ChainRows { writer, draws: kept }))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { target, names, n_observables: observables.len(), chains })
    }

    /// Records draw `x` of chain `c` with its log-density and acceptance statistic.
    pub fn record(&self, c: usize, lp: f64, accept_stat: f64, x: &[f64]) -> Result<()> {
        // The row kept for the summary is the only allocation: observables are computed into it.
        let d = x.len();
        let mut row = Vec::with_capacity(d + self.n_observables);
        row.extend_from_slice(x);
        row.resize(d + self.n_observables, 0.0);
        self.target.observables(x, &mut row[d..])?;
        let mut chain = self.chains[c].lock().map_err(|_| Error::Other("a chain writer panicked".into()))?;
        if let Some(w) = chain.writer.as_mut() {
            w.write_draw(lp, accept_stat, x, &row[d..])?;
        }
        chain.draws.rows.push(row);
        chain.draws.lp.push(lp);
        chain.draws.accept_stat.push(accept_stat);
        Ok(())
    }

    /// Cuts every chain to the number of draws the shortest one holds (chains stopped early do
    /// not stop together) and returns that number. The chain files keep every row written.
    pub fn truncate_to_shortest(&mut self) -> usize {
        let chains: Vec<&mut ChainRows> = self.chains.iter_mut().filter_map(|m| m.get_mut().ok()).collect();
        let kept = chains.iter().map(|c| c.draws.lp.len()).min().unwrap_or(0);
        for c in chains {
            c.draws.rows.truncate(kept);
            c.draws.lp.truncate(kept);
            c.draws.accept_stat.truncate(kept);
        }
        kept
    }

    /// Summaries of every quantity over all chains, and the draws themselves.
    pub fn finish(self) -> Result<(Quantities, Draws)> {
        let chains: Vec<ChainDraws> = self
            .chains
            .into_iter()
            .map(|m| m.into_inner().map(|c| c.draws).map_err(|_| Error::Other("a chain writer panicked".into())))
            .collect::<Result<_>>()?;
        let rows: Vec<&[Vec<f64>]> = chains.iter().map(|c| c.rows.as_slice()).collect();
        let quantities = summarize_rows(&self.names, &rows)?;
        Ok((quantities, Draws { dim: self.target.dim(), names: self.names, chains }))
    }
}
