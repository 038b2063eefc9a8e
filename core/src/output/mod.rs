//! Files a run leaves behind: per-chain CmdStan-style CSV and the `summary.json`.

pub mod chains;
pub mod summary;
