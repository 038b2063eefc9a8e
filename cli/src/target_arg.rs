//! `--target NAME|FILE.rhai` with `--set key=value` parameters, built by `bootflow_core::run`.

use std::collections::BTreeMap;

use anyhow::Result;
use bootflow_core::run::target::{build_target, parse_params};
use bootflow_core::{Registry, Target};
use clap::Args;
use serde_json::Value;

/// Which target, and its parameters.
#[derive(Args, Clone, Debug)]
pub struct TargetArgs {
    /// A target name (see `bootflow targets`) or the path of a `.rhai` script.
    #[arg(long, value_name = "NAME|FILE.rhai")]
    pub target: String,
    /// A target parameter, e.g. `--set dim=16` or `--set normalisation=standard`; may be repeated.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
}

impl TargetArgs {
    /// The parameters as a map.
    pub fn params(&self) -> Result<BTreeMap<String, Value>> {
        Ok(parse_params(&self.set)?)
    }

    /// Builds the target.
    pub fn build(&self, reg: &Registry) -> Result<Box<dyn Target>> {
        Ok(build_target(reg, &self.target, &self.params()?)?)
    }
}
