//! Where the draws of a sampling run go as they are made: one CmdStan-style CSV per chain
//! (`chain_1.csv`, ...; each row written and flushed whole, so a killed run leaves complete rows)
//! and, in memory, the quantities (coordinates, then the target's observables) for the summary.
//! Chains may report from different threads; each chain has its own lock.

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

/// The open file and the kept rows of one chain.
struct ChainRows {
    writer: ChainWriter,
    /// One row per draw: coordinates then observables.
    rows: Vec<Vec<f64>>,
}

/// Chain files and in-memory rows of every chain.
pub struct ChainSink<'a> {
    target: &'a dyn Target,
    names: Vec<String>,
    n_observables: usize,
    chains: Vec<Mutex<ChainRows>>,
}

impl<'a> ChainSink<'a> {
    /// Creates `chain_1.csv ... chain_N.csv` in `dir` with their headers.
    pub fn create(
        dir: &Path,
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
                let writer = ChainWriter::create(&chain_path(dir, chain), &meta, dim, &observables)?;
                Ok(Mutex::new(ChainRows { writer, rows: Vec::with_capacity(draws) }))
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
        chain.writer.write_draw(lp, accept_stat, x, &row[d..])?;
        chain.rows.push(row);
        Ok(())
    }

    /// Summaries of every quantity over all chains.
    pub fn summarize(self) -> Result<Quantities> {
        let rows: Vec<Vec<Vec<f64>>> = self
            .chains
            .into_iter()
            .map(|m| m.into_inner().map(|c| c.rows).map_err(|_| Error::Other("a chain writer panicked".into())))
            .collect::<Result<_>>()?;
        summarize_rows(&self.names, &rows)
    }
}
