//! `--target NAME|FILE.rhai` with `--set key=value` parameters: a registered target by name, or a
//! Rhai script by path.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use bootflow_core::script::ScriptTarget;
use bootflow_core::{Registry, Target};
use clap::Args;
use serde_json::Value;

use crate::sets::parse_set;

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
        self.set.iter().map(|s| parse_set(s)).collect()
    }

    /// Builds the target.
    pub fn build(&self, reg: &Registry) -> Result<Box<dyn Target>> {
        build_target(reg, &self.target, &self.params()?)
    }
}

/// Whether `spec` names a script rather than a registered target.
pub fn is_script(spec: &str) -> bool {
    spec.ends_with(".rhai")
}

/// A registered target by name or a Rhai script by path, configured with `params`.
pub fn build_target(reg: &Registry, spec: &str, params: &BTreeMap<String, Value>) -> Result<Box<dyn Target>> {
    if is_script(spec) {
        return Ok(Box::new(ScriptTarget::from_file(Path::new(spec), params)?));
    }
    let cfg = Value::Object(params.clone().into_iter().collect());
    reg.target(spec, &cfg).with_context(|| format!("target '{spec}'"))
}
