//! `bootflow run CONFIG.toml`: train a flow, evaluate it, run MIS chains with it (the pipeline
//! of `bootflow_core::run`, whose `spec` module describes the config's `[evaluate]` and `[sample]`
//! tables), then draw the figures and the report into the same directory.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use bootflow_core::run::outdir::prepare;
use bootflow_core::run::resume::resumed_spec;
use bootflow_core::run::{self, RunSpec, Start};
use bootflow_core::{CHECKPOINT_FILE, Checkpoint, Error, Registry};

use crate::Interrupted;
use crate::progress::Stderr;

/// Arguments of `bootflow run`.
#[derive(clap::Args)]
pub struct RunArgs {
    /// Run config (TOML): the train config plus optional [evaluate] and [sample] tables. With
    /// --resume it may be left out (the run directory's config.toml is the config).
    pub config: Option<PathBuf>,
    /// Output directory (default: runs/<config file stem>); must be new or empty unless --force.
    #[arg(long, short)]
    pub out: Option<PathBuf>,
    /// Continue the training of the run in DIR (default: the output directory) from its
    /// checkpoint, then evaluate and sample anew; a config file or --set may change only
    /// train.steps, train.max_seconds, train.max_skipped, the logging and evaluation intervals,
    /// [evaluate] and [sample].
    #[arg(long, value_name = "DIR", num_args = 0..=1)]
    pub resume: Option<Option<PathBuf>>,
    /// Empty a used output directory first (only if everything in it was written by bootflow).
    #[arg(long)]
    pub force: bool,
    /// Override a config value, e.g. --set train.steps=200 or --set sample.chains=8 (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
}

/// Runs `bootflow run` with the components in `registry`: the pipeline, then the figures.
pub fn run(args: &RunArgs, registry: &Registry) -> Result<()> {
    let (spec, out, start) = match &args.resume {
        Some(resume) => {
            let dir = crate::cmd_train::resume_dir(resume.as_deref(), args.out.as_deref(), args.config.as_deref())?;
            (resumed_spec(&dir, args.config.as_deref(), &args.sets)?, dir, Start::Resume)
        }
        None => {
            let Some(config) = &args.config else { bail!("a run config is needed (or --resume DIR)") };
            let spec = RunSpec::from_file(config, &args.sets)?;
            let out = crate::cmd_train::out_dir(args.out.as_deref(), config);
            prepare(&out, args.force, "--out")?;
            (spec, out, Start::Fresh)
        }
    };
    match run::run(&spec, &out, start, registry, &Stderr) {
        Err(Error::Interrupted) => {
            let step = Checkpoint::read(&out).map(|c| c.step).unwrap_or(0);
            return Err(Interrupted(format!(
                "interrupted at step {step}: checkpoint in {} (continue with: bootflow run --resume {})",
                out.join(CHECKPOINT_FILE).display(),
                out.display()
            ))
            .into());
        }
        other => other?,
    };
    let report = crate::run_plots::draw_run(&out, registry)?;
    print!("{}", crate::plot::summary_text(&report));
    eprintln!("wrote {}", out.display());
    Ok(())
}

/// Runs `bootflow plot RUN_DIR`: redraws the figures and the report from the run's files.
pub fn plot(dir: &Path, registry: &Registry) -> Result<()> {
    let figures = match crate::run_plots::draw(dir, registry)? {
        crate::run_plots::Drawing::Run(report) => report.figures,
        crate::run_plots::Drawing::Training(figures) => figures,
    };
    for f in &figures {
        println!("{}", f.display());
    }
    Ok(())
}
