//! Training a flow into a run directory (`bootflow train`, and the first step of `bootflow run`):
//! the config that ran, `metrics.csv`, `checkpoint.json` and (for `train`) `summary.json`.

use std::path::Path;

use serde::Serialize;
use serde_json::json;

use crate::diagnostics::warnings;
use crate::error::{Error, Result, ResultExt};
use crate::run::progress::RunProgress;
use crate::run::target::pin_script;
use crate::train::checkpoint::{CHECKPOINT_FILE, Checkpoint};
use crate::train::config::RunConfig;
use crate::train::trainer::Trainer;
use crate::{Registry, Target};

/// The config file a run directory records.
pub const CONFIG_FILE: &str = "config.toml";

/// Whether training starts afresh or continues the run in the directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    /// A new run: creates the directory and writes the config into it.
    Fresh,
    /// Continues the checkpoint in the directory with `config`, which [`resume::resumed_spec`]
    /// checked against the directory's (only the keys that extend a run may differ); the
    /// directory's `config.toml` is rewritten to it.
    ///
    /// [`resume::resumed_spec`]: crate::run::resume::resumed_spec
    Resume,
}

/// What a training run did, as `bootflow train` writes it to `summary.json`.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainSummary {
    /// Steps done in total (resumed runs count the earlier ones).
    pub steps: u64,
    /// Steps skipped for non-finite losses or gradients.
    pub skipped_steps: u64,
    /// Training time.
    pub seconds: f64,
    /// Number of flow parameters.
    pub n_params: usize,
    /// What `flow.init` chose for a fresh run (see [`crate::initialise`]).
    pub flow_init: Option<String>,
}

impl TrainSummary {
    /// The summary of the run a checkpoint holds.
    pub fn of(c: &Checkpoint) -> Self {
        Self {
            steps: c.step,
            skipped_steps: c.skipped_steps,
            seconds: c.elapsed_seconds,
            n_params: c.params.len(),
            flow_init: None,
        }
    }
}

/// Whether `dir` already holds a run (a checkpoint).
pub fn holds_run(dir: &Path) -> bool {
    dir.join(CHECKPOINT_FILE).exists()
}

/// Creates `dir` and writes `config` into it as `config.toml`.
pub fn write_config(dir: &Path, config: &impl Serialize) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let text = toml::to_string(config).context("writing the config")?;
    std::fs::write(dir.join(CONFIG_FILE), text).with_context(|| format!("writing {}", dir.display()))
}

/// Trains `config`'s flow on `target` in `out` until `train.steps` (or its time budget), then
/// writes `summary.json`. The caller checks first whether `out` holds a run ([`holds_run`]).
pub fn train(
    config: &RunConfig,
    target: Box<dyn Target>,
    out: &Path,
    start: Start,
    registry: &Registry,
    progress: &dyn RunProgress,
) -> Result<TrainSummary> {
    let mut trainer = match start {
        Start::Resume => {
            let mut t = Trainer::resume(out, registry, target).context("resuming")?;
            t.extend(&config.train, registry)?;
            write_config(out, config)?;
            t
        }
        Start::Fresh => {
            let mut recorded = config.clone();
            pin_script(&mut recorded.target)?;
            // Built before anything is written: a refused config leaves the directory untouched.
            let trainer = Trainer::from_config(registry, target, config)?;
            crate::run::outdir::empty_forced(out)?;
            write_config(out, &recorded)?;
            trainer.write_to(out)?
        }
    };
    let summary = run_trainer(&mut trainer, progress)?;
    write_summary(out, &summary)?;
    Ok(summary)
}

/// Writes a training run's `summary.json` into `out`.
pub fn write_summary(out: &Path, summary: &TrainSummary) -> Result<()> {
    let mut json = json!({
        "steps": summary.steps,
        "skipped_steps": summary.skipped_steps,
        "seconds": summary.seconds,
        "n_params": summary.n_params,
        warnings::KEY: warnings::for_training(summary.steps, summary.skipped_steps),
    });
    if let Some(note) = &summary.flow_init {
        json["flow_init"] = json!(note);
    }
    let text = serde_json::to_string_pretty(&json).map_err(|e| Error::Bug(format!("summary JSON: {e}")))?;
    std::fs::write(out.join("summary.json"), text).with_context(|| format!("writing summary in {}", out.display()))
}

/// Runs the training loop with the front end's observer, if any.
pub fn run_trainer(trainer: &mut Trainer, progress: &dyn RunProgress) -> Result<TrainSummary> {
    if let Some(observer) = progress.training() {
        trainer.observe(observer);
    }
    if let Some(flag) = progress.stop() {
        trainer.stop_when_set(flag);
    }
    trainer.run()?;
    // Reported once training ran, so that a run refused at its first step prints its error alone.
    if let Some(note) = trainer.init_note() {
        progress.event(crate::run::progress::Event::FlowInit { note });
    }
    Ok(TrainSummary { flow_init: trainer.init_note().map(str::to_string), ..TrainSummary::of(&trainer.snapshot()) })
}
