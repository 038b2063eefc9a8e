//! Double Well and Many Well targets (Noé et al.'s double well, repeated): analytic gradient,
//! known normaliser, exact sampler and the mode-centre test set.
//!
//! Registered names: `double-well` (dim 2, no keys) and `manywell` (key `dim`, even, default 32;
//! `dim = 16` is the variant of the first FAB paper).
#![forbid(unsafe_code)]

pub mod manywell;
pub mod well;

use std::sync::Arc;

use bootflow_core::parse_config;
use bootflow_core::{Registry, Result, Source, Target};
use serde::Deserialize;
use serde_json::Value;

pub use manywell::ManyWell;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ManyWellConfig {
    #[serde(default = "default_dim")]
    dim: usize,
}

fn default_dim() -> usize {
    32
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoKeys {}

/// Builds `manywell` from its config.
pub fn manywell_from_config(cfg: &Value) -> Result<ManyWell> {
    let c: ManyWellConfig = parse_config("manywell", cfg)?;
    ManyWell::new(c.dim)
}

/// Registers `double-well` and `manywell`.
pub fn register(reg: &mut Registry) -> Result<()> {
    reg.add_target(
        "double-well",
        Source::Builtin,
        "2-D double well (a = -0.5, b = -6, c = 1) times N(0, 1); exact sampler, known log Z",
        Arc::new(|cfg: &Value| {
            parse_config::<NoKeys>("double-well", cfg)?;
            Ok(Box::new(ManyWell::new(2)?) as Box<dyn Target>)
        }),
    )?;
    reg.add_target(
        "manywell",
        Source::Builtin,
        "Many Well: dim/2 double-well pairs (key dim, even, default 32); exact sampler, known log Z, test set",
        Arc::new(|cfg: &Value| Ok(Box::new(manywell_from_config(cfg)?) as Box<dyn Target>)),
    )
}

#[cfg(test)]
mod tests;

bootflow_core::export_plugin!(name = "manywell", register = register);
