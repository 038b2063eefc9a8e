//! `bootflow targets`: every target that can be named, with its capabilities.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Result;
use bootflow_core::ScriptTarget;
use bootflow_core::{Registry, Target};
use clap::Args;
use serde::Serialize;
use serde_json::Value;

/// List the targets: built-ins, plugin targets and Rhai scripts.
///
/// Example: `bootflow targets --json --scripts scripts`
#[derive(Args)]
pub struct TargetsArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Directory whose `*.rhai` scripts are listed too (default: `scripts` if it exists).
    #[arg(long, value_name = "DIR")]
    pub scripts: Option<PathBuf>,
}

/// One row of the listing; capabilities are those of the target built with default parameters
/// (`null` where it cannot be built without parameters).
#[derive(Serialize)]
struct Row {
    name: String,
    source: &'static str,
    path: Option<String>,
    description: String,
    dim: Option<usize>,
    has_gradient: Option<bool>,
    has_exact_sampler: Option<bool>,
    known_log_z: Option<f64>,
    /// Why a script could not be loaded (a syntax error, a limit, its time budget).
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

fn row(name: String, source: &'static str, path: Option<&Path>, description: String, t: Option<&dyn Target>) -> Row {
    Row {
        name,
        source,
        path: path.map(|p| p.display().to_string()),
        description,
        dim: t.map(|t| t.dim()),
        has_gradient: t.map(|t| t.has_grad()),
        has_exact_sampler: t.map(|t| t.has_sampler()),
        known_log_z: t.and_then(|t| t.log_z()),
        error: None,
    }
}

pub fn run(args: &TargetsArgs, reg: &Registry) -> Result<()> {
    let mut rows = Vec::new();
    for (name, entry) in &reg.targets {
        let t = (entry.factory)(&Value::Null).ok();
        let path = match &entry.source {
            bootflow_core::Source::Plugin(p) | bootflow_core::Source::Script(p) => Some(p.as_path()),
            bootflow_core::Source::Builtin => None,
        };
        rows.push(row(name.clone(), entry.source.kind(), path, entry.description.clone(), t.as_deref()));
    }
    let dir = args.scripts.clone().or_else(|| Some(PathBuf::from("scripts")).filter(|p| p.is_dir()));
    if let Some(dir) = dir {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map_err(|e| anyhow::anyhow!("cannot read script directory {}: {e}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "rhai"))
            .collect();
        files.sort();
        for f in files {
            // Loading runs the script's top level, which the sandbox bounds in time.
            let loaded = ScriptTarget::from_file(&f, &BTreeMap::new());
            let t = loaded.as_ref().ok();
            let name = f.display().to_string();
            let mut r = row(name, "script", Some(&f), String::new(), t.map(|t| t as &dyn Target));
            r.error = loaded.err().map(|e| e.to_string());
            rows.push(r);
        }
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&serde_json::json!({ "targets": rows }))?);
        return Ok(());
    }
    let yn = |b: Option<bool>| match b {
        Some(true) => "yes",
        Some(false) => "no",
        None => "-",
    };
    println!("{:<28} {:<8} {:>5} {:>5} {:>8} {:>12}", "NAME", "SOURCE", "DIM", "GRAD", "SAMPLER", "LOG Z");
    for r in &rows {
        let dim = r.dim.map_or("-".to_string(), |d| d.to_string());
        let lz = r.known_log_z.map_or("-".to_string(), |z| format!("{z:.6}"));
        println!(
            "{:<28} {:<8} {:>5} {:>5} {:>8} {:>12}",
            r.name,
            r.source,
            dim,
            yn(r.has_gradient),
            yn(r.has_exact_sampler),
            lz
        );
    }
    for r in rows.iter().filter(|r| r.error.is_some()) {
        println!("not loaded: {}", r.error.as_deref().unwrap_or_default());
    }
    Ok(())
}
