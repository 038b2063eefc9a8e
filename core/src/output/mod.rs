//! Files a run leaves behind: per-chain CmdStan-style CSV (and the sink that writes them while
//! keeping the rows for the summary), the training metrics CSV and the `summary.json`.

pub mod chain_sink;
pub mod chains;
pub mod metrics;
pub mod summary;
