//! The run pipeline as a library: a run spec in, a run directory and a typed summary out, so the
//! CLI, a Python or an MPI front end drive the same train -> evaluate -> sample -> summarise
//! steps. Each step is also callable alone ([`train()`], [`estimate()`], [`sample()`]), as are
//! the pieces every front end needs ([`build_target`], [`RunSpec::from_file`]).
//!
//! Nothing here prints: progress goes to the [`RunProgress`] the caller passes in.

pub mod budget;
pub mod checks;
pub mod estimate;
pub mod flow_mcmc;
pub mod gradvar;
pub mod input;
pub mod laplace;
pub mod optimize;
pub mod outdir;
pub mod progress;
pub mod reproduce;
pub mod resume;
pub mod sample;
pub mod sets;
pub mod spec;
pub mod target;
pub mod train;

use std::path::Path;

use serde_json::json;

pub use estimate::{Estimate, EstimateRequest, estimate, evaluate_checkpoint};
pub use gradvar::{GradVar, GradVarRequest, gradvar};
pub use progress::{Counter, Event, Quiet, RunProgress};
pub use sample::{Method, SampleRequest, Sampled, Sizes, load_checkpoint, load_flow, sample, sample_with};
pub use spec::RunSpec;
pub use target::build_target;
pub use train::{CONFIG_FILE, Start, TrainSummary, holds_run, run_trainer, train, write_config, write_summary};

use crate::Registry;
use crate::diagnostics::eval::FlowEval;
use crate::diagnostics::warnings;
use crate::error::{Error, Result, ResultExt};
use crate::output::metrics::read_metrics_csv;
use crate::output::summary::Summary;
use crate::train::trainer::Trainer;

/// What a whole run did; `sample` is the summary written to the run's `summary.json`.
#[derive(Clone, Debug)]
pub struct RunSummary {
    /// The training run.
    pub train: TrainSummary,
    /// The last logged training loss.
    pub final_loss: Option<f64>,
    /// The evaluation of the trained flow.
    pub flow: FlowEval,
    /// The MIS chains' summary, with the `train` and `flow` facts in its `extra`.
    pub sample: Summary,
}

/// Removes the chain files, summary, estimate, figures and report of a run directory.
fn remove_sampling_outputs(dir: &Path) -> Result<()> {
    let entries = std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let sampling = name.starts_with("chain_")
            || ["summary.json", "estimate.json", "report.md"].contains(&name.as_str())
            || name.ends_with(".png")
            || name.ends_with(".svg");
        if sampling && outdir::is_bootflow_file(&name) {
            std::fs::remove_file(entry.path()).with_context(|| format!("removing {}", entry.path().display()))?;
        }
    }
    Ok(())
}

/// The last logged training loss of the run in `dir`.
fn final_loss(dir: &Path) -> Option<f64> {
    let m = read_metrics_csv(&dir.join("metrics.csv")).ok()?;
    m.column("loss")?.iter().rev().find_map(|v| *v)
}

/// Runs the whole pipeline of `spec` in `out`: trains the flow, evaluates it, runs MIS chains
/// with it and writes `summary.json`. The caller checks first whether `out` holds a run
/// ([`holds_run`]); figures and reports are the front end's.
pub fn run(
    spec: &RunSpec,
    out: &Path,
    start: Start,
    registry: &Registry,
    progress: &dyn RunProgress,
) -> Result<RunSummary> {
    let params = spec.train.target.params.clone().into_iter().collect();
    let target = build_target(registry, &spec.train.target.name, &params).context("building the target")?;
    // Everything after training is sized now, so a run never trains for an hour and then fails.
    let ais_steps = if spec.sample.method == "mis-ais" { spec.sample.ais_steps } else { 0 };
    let columns = target.dim() + target.observable_names().len() + 3;
    let names = budget::RUN_KEYS;
    budget::check_sampling(names, spec.sample.chains, spec.sample.draws, columns, ais_steps)?;
    budget::check_open_files(names.chains, spec.sample.chains)?;
    let eval_ais = spec.evaluate.ais.unwrap_or(0);
    budget::check_evaluation(
        budget::SizeNames { ais_steps: "evaluate.ais", ..names },
        target.dim(),
        &spec.train.flow,
        spec.evaluate.samples,
        eval_ais,
    )?;
    let mut trainer = match start {
        Start::Fresh => {
            let mut recorded = spec.clone();
            recorded.pin_script()?;
            let trainer = Trainer::from_config(registry, target, &spec.train)?;
            outdir::empty_forced(out)?;
            train::write_config(out, &recorded.table)?;
            trainer.write_to(out)?
        }
        Start::Resume => {
            let mut t = Trainer::resume(out, registry, target).context("resuming")?;
            t.extend(&spec.train.train, registry)?;
            // What the earlier run sampled and drew belongs to its flow, not to the one trained now.
            remove_sampling_outputs(out)?;
            train::write_config(out, &spec.table)?;
            t
        }
    };
    let trained = train::run_trainer(&mut trainer, progress)?;
    if progress.stop().is_some_and(|f| f.load(std::sync::atomic::Ordering::Relaxed)) {
        return Err(Error::Interrupted);
    }
    progress.event(Event::Trained { steps: trained.steps, seconds: trained.seconds });
    let eval = estimate::evaluate_trained(out, spec, trainer.flow(), trainer.target(), registry)?;
    progress.event(Event::Evaluated { eval: &eval });
    let mut summary = sample::sample_trained(out, spec, trainer.flow(), trainer.target(), registry, progress)?;
    let final_loss = final_loss(out);
    summary.extra.insert(
        "train".into(),
        json!({"steps": trained.steps, "seconds": trained.seconds, "skipped_steps": trained.skipped_steps,
            "final_loss": final_loss}),
    );
    summary.extra.insert(
        "flow".into(),
        json!({"ess": eval.ess, "ess_ais": eval.ess_ais, "forward_ess": eval.forward_ess, "log_z": eval.log_z,
            "log_z_se": eval.log_z_se, "test_mean_log_q": eval.test_mean_log_q,
            "mis_accept": eval.mis_accept, "f_q": eval.f_q, "signal_sd": eval.signal_sd}),
    );
    let mut warnings = warnings::for_training(trained.steps, trained.skipped_steps);
    warnings.extend(warnings::for_flow(&eval));
    warnings.extend(warnings::for_chains(&summary));
    summary.extra.insert(warnings::KEY.into(), json!(warnings));
    summary.write_atomic(&out.join(sample::SUMMARY_FILE))?;
    Ok(RunSummary { train: trained, final_loss, flow: eval, sample: summary })
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;

    /// Counts what a run reports, as a front end's callback would.
    #[derive(Default)]
    struct Counts {
        events: AtomicU64,
        draws: AtomicU64,
    }

    impl RunProgress for Counts {
        fn event(&self, _event: Event<'_>) {
            self.events.fetch_add(1, Ordering::Relaxed);
        }

        fn counter(&self, _what: &str, _total: u64) -> Box<dyn Counter + '_> {
            Box::new(Draws(&self.draws))
        }
    }

    struct Draws<'a>(&'a AtomicU64);

    impl Counter for Draws<'_> {
        fn advance(&self, n: u64) {
            self.0.fetch_add(n, Ordering::Relaxed);
        }
    }

    #[test]
    fn a_run_spec_gives_a_run_directory_and_its_summary() {
        let text = "seed = 2\n[target]\nname = \"gaussian\"\ndim = 2\n[flow]\nlayers = [{ type = \"affine\" }]\n\
                    [objective]\nname = \"kl\"\nbatch = 32\n[train]\nsteps = 20\nlog_every = 5\n\
                    [evaluate]\nsamples = 200\n[sample]\nchains = 2\ndraws = 25\n";
        let spec = RunSpec::from_toml_str(text, &["train.steps=30".into()]).unwrap();
        let dir = std::env::temp_dir().join(format!("bootflow-core-run-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let progress = Counts::default();
        let s = run(&spec, &dir, Start::Fresh, &Registry::with_builtins(), &progress).unwrap();
        assert_eq!((s.train.steps, s.sample.chains, s.sample.draws), (30, 2, 25));
        assert!(s.final_loss.is_some() && s.flow.samples == 200);
        // flow.init's choice (laplace: the target has a gradient), trained, evaluated; every draw counted.
        assert_eq!(progress.events.load(Ordering::Relaxed), 3);
        assert_eq!(progress.draws.load(Ordering::Relaxed), 50);
        for f in ["config.toml", "metrics.csv", "checkpoint.json", "chain_1.csv", "chain_2.csv", "summary.json"] {
            assert!(dir.join(f).exists(), "{f} missing");
        }
        assert!(holds_run(&dir));
        let written = Summary::read(&dir.join(sample::SUMMARY_FILE)).unwrap();
        assert_eq!(written.extra["train"]["steps"], 30);
        assert_eq!(written.extra["train"]["final_loss"].as_f64(), s.final_loss);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
