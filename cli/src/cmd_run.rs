//! `bootflow run CONFIG.toml`: train a flow, evaluate it, run MIS chains with it (the pipeline
//! of `bootflow_core::run`, whose `spec` module describes the config's `[evaluate]` and `[sample]`
//! tables), then draw the figures and the report into the same directory.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use bootflow_core::Registry;
use bootflow_core::run::{self, RunSpec, holds_run};

use crate::progress::Stderr;

/// Arguments of `bootflow run`.
#[derive(clap::Args)]
pub struct RunArgs {
    /// Run config (TOML): the train config plus optional [evaluate] and [sample] tables.
    pub config: PathBuf,
    /// Output directory (default: runs/<config file stem>).
    #[arg(long, short)]
    pub out: Option<PathBuf>,
    /// Override a config value, e.g. --set train.steps=200 or --set sample.chains=8 (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
}

/// Runs `bootflow run` with the components in `registry`: the pipeline, then the figures.
pub fn run(args: &RunArgs, registry: &Registry) -> Result<()> {
    let spec = RunSpec::from_file(&args.config, &args.sets)?;
    let out = crate::cmd_train::out_dir(args.out.as_deref(), &args.config);
    if holds_run(&out) {
        bail!("{} already holds a run; choose another --out", out.display());
    }
    run::run(&spec, &out, registry, &Stderr)?;
    let report = crate::run_plots::draw_run(&out, registry)?;
    print!("{}", crate::plot::summary_text(&report));
    eprintln!("wrote {}", out.display());
    Ok(())
}

/// Runs `bootflow plot RUN_DIR`: redraws the figures and the report from the run's files.
pub fn plot(dir: &Path, registry: &Registry) -> Result<()> {
    let report = crate::run_plots::draw_run(dir, registry)?;
    for f in &report.figures {
        println!("{}", f.display());
    }
    Ok(())
}
