//! `bootflow run CONFIG.toml`: train a flow, evaluate it, run MIS chains with it, and write the
//! estimates, figures and report into one directory. The config is the one `bootflow train`
//! reads plus two optional tables:
//!
//! ```toml
//! [evaluate]
//! samples = 100000   # fresh flow samples for ESS and log Z
//! ais = 4            # AIS intermediate distributions (default: the FAB run's own, else none)
//!
//! [sample]
//! method = "mis"     # or "mis-ais"
//! chains = 4
//! draws = 1000
//! ais_steps = 8      # intermediate distributions of mis-ais
//! ```

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use bootflow_core::ais::Spacing;
use bootflow_core::eval::{EvalConfig, FlowEval, evaluate_flow};
use bootflow_core::output::summary::Summary;
use bootflow_core::train::checkpoint::CHECKPOINT_FILE;
use bootflow_core::train::config::RunConfig;
use bootflow_core::train::trainer::Trainer;
use bootflow_core::{Flow, Registry, Target, rng};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::sampler::{self, AisRefinement, Plan};

/// `[evaluate]`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct EvaluateSection {
    pub samples: usize,
    pub ais: Option<usize>,
}

impl Default for EvaluateSection {
    fn default() -> Self {
        Self { samples: 100_000, ais: None }
    }
}

/// `[sample]`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SampleSection {
    pub method: String,
    pub chains: usize,
    pub draws: usize,
    pub ais_steps: usize,
}

impl Default for SampleSection {
    fn default() -> Self {
        Self { method: "mis".into(), chains: 4, draws: 1000, ais_steps: 8 }
    }
}

/// A whole run config.
#[derive(Clone, Debug, PartialEq)]
pub struct RunFile {
    pub train: RunConfig,
    pub evaluate: EvaluateSection,
    pub sample: SampleSection,
    /// The config as read (with overrides), written back as `config.toml`.
    pub table: Value,
}

/// Reads a run config with `--set` overrides: the train config plus `[evaluate]` and `[sample]`.
pub fn load_run_config(path: &Path, sets: &[String]) -> Result<RunFile> {
    let table = crate::cmd_train::load_table(path, sets)?;
    let mut rest = table.clone();
    let map = rest.as_object_mut().context("a run config is a table")?;
    let section = |v: Option<Value>, name: &str| -> Result<Value> {
        match v {
            None => Ok(json!({})),
            Some(v) if v.is_object() => Ok(v),
            Some(_) => bail!("[{name}] must be a table"),
        }
    };
    let evaluate = section(map.remove("evaluate"), "evaluate")?;
    let sample = section(map.remove("sample"), "sample")?;
    let ctx = || format!("config {}", path.display());
    let run = RunFile {
        train: serde_json::from_value(rest).with_context(ctx)?,
        evaluate: serde_json::from_value(evaluate).with_context(|| format!("[evaluate] of {}", path.display()))?,
        sample: serde_json::from_value(sample).with_context(|| format!("[sample] of {}", path.display()))?,
        table,
    };
    if !matches!(run.sample.method.as_str(), "mis" | "mis-ais") {
        bail!("[sample] method = \"{}\": expected \"mis\" or \"mis-ais\"", run.sample.method);
    }
    if run.sample.chains == 0 || run.sample.draws == 0 || run.evaluate.samples == 0 {
        bail!("[sample] chains and draws and [evaluate] samples must be at least 1");
    }
    Ok(run)
}

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

/// Evaluation of the trained flow as configured; `bootflow estimate` computes the same figures.
fn evaluate(dir: &Path, run: &RunFile, flow: &Flow, target: &dyn Target, reg: &Registry) -> Result<FlowEval> {
    let c = bootflow_core::train::checkpoint::Checkpoint::read(dir)?;
    let ais = crate::cmd_estimate::ais_config(&c, run.evaluate.ais, reg)?;
    let cfg = EvalConfig { samples: run.evaluate.samples, ais, ..Default::default() };
    let mut r = rng::stream(run.train.seed, 1);
    evaluate_flow(flow, target, &cfg, reg, &mut r).context("evaluating the flow")
}

/// MIS (or MIS with AIS) chains with the trained flow.
fn sample(dir: &Path, run: &RunFile, flow: &Flow, target: &dyn Target, reg: &Registry) -> Result<Summary> {
    let s = &run.sample;
    let config = json!({"target": run.train.target.name, "method": s.method, "chains": s.chains, "draws": s.draws,
        "seed": run.train.seed, "flow": CHECKPOINT_FILE, "ais_steps": (s.method == "mis-ais").then_some(s.ais_steps)});
    let plan = Plan {
        method: s.method.clone(),
        chains: s.chains,
        draws: s.draws,
        warmup: 0,
        seed: run.train.seed,
        init_scale: 1.0,
        config,
    };
    if s.method == "mis" {
        return sampler::with_flow(flow, target, None, &plan, dir);
    }
    let name = if target.has_grad() && reg.kernels.contains_key("hmc") { "hmc" } else { "rwm" };
    let kernel = reg.kernel(name, flow.dim(), &crate::cmd_sample::kernel_config(name, &[])?)?;
    let ais = AisRefinement { kernel: kernel.as_ref(), n_intermediate: s.ais_steps, spacing: Spacing::Linear };
    sampler::with_flow(flow, target, Some(&ais), &plan, dir)
}

/// The last logged training loss.
fn final_loss(dir: &Path) -> Option<f64> {
    let m = crate::plot::read_metrics_csv(&dir.join("metrics.csv")).ok()?;
    m.column("loss")?.iter().rev().find_map(|v| *v)
}

/// Runs `bootflow run` with the components in `registry`.
pub fn run(args: &RunArgs, registry: &Registry) -> Result<()> {
    let run = load_run_config(&args.config, &args.sets)?;
    let out = match &args.out {
        Some(o) => o.clone(),
        None => {
            let stem = args.config.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or("run".into());
            PathBuf::from("runs").join(stem)
        }
    };
    if out.join(CHECKPOINT_FILE).exists() {
        bail!("{} already holds a run; choose another --out", out.display());
    }
    let params = run.train.target.params.clone().into_iter().collect();
    let target =
        crate::target_arg::build_target(registry, &run.train.target.name, &params).context("building the target")?;
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let text = toml::to_string(&run.table).context("writing the config")?;
    std::fs::write(out.join("config.toml"), text).with_context(|| format!("writing {}", out.display()))?;

    let mut trainer = Trainer::from_config(registry, target, &run.train)?.write_to(&out)?;
    trainer.observe(Box::new(crate::cmd_train::LogLines));
    trainer.run()?;
    let c = trainer.snapshot();
    eprintln!("trained {} steps in {:.1}s; evaluating", c.step, c.elapsed_seconds);
    let eval = evaluate(&out, &run, trainer.flow(), trainer.target(), registry)?;
    eprintln!("flow ESS {:.4}; sampling", eval.ess);
    let mut summary = sample(&out, &run, trainer.flow(), trainer.target(), registry)?;
    summary.extra.insert(
        "train".into(),
        json!({"steps": c.step, "seconds": c.elapsed_seconds, "skipped_steps": c.skipped_steps, "final_loss": final_loss(&out)}),
    );
    summary.extra.insert(
        "flow".into(),
        json!({"ess": eval.ess, "ess_ais": eval.ess_ais, "forward_ess": eval.forward_ess, "log_z": eval.log_z,
            "log_z_se": eval.log_z_se, "test_mean_log_q": eval.test_mean_log_q}),
    );
    summary.write_atomic(&out.join("summary.json"))?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn write(name: &str, text: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("bootflow-cli-run-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    const TRAIN: &str = "seed = 4\n[target]\nname = \"gmm5\"\n[flow]\nlayers = [{ type = \"affine\" }]\n\
                         [objective]\nname = \"kl\"\n";

    #[test]
    fn run_configs_add_evaluate_and_sample_tables() {
        let plain = load_run_config(&write("plain.toml", TRAIN), &[]).unwrap();
        assert_eq!((plain.evaluate, plain.sample), (EvaluateSection::default(), SampleSection::default()));
        let text = format!("{TRAIN}[evaluate]\nsamples = 500\nais = 2\n[sample]\nmethod = \"mis-ais\"\nchains = 3\n");
        let path = write("full.toml", &text);
        let full = load_run_config(&path, &["sample.draws=50".into()]).unwrap();
        assert_eq!(full.train.seed, 4);
        assert_eq!(full.evaluate, EvaluateSection { samples: 500, ais: Some(2) });
        assert_eq!(full.sample, SampleSection { method: "mis-ais".into(), chains: 3, draws: 50, ais_steps: 8 });
        // The table written back as config.toml reads the same.
        let again = write("again.toml", &toml::to_string(&full.table).unwrap());
        assert_eq!(load_run_config(&again, &[]).unwrap(), full);
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused() {
        for (name, extra, want) in [
            ("typo.toml", "[sample]\nchain = 3\n", "chain"),
            ("method.toml", "[sample]\nmethod = \"hmc\"\n", "mis-ais"),
            ("zero.toml", "[sample]\ndraws = 0\n", "at least 1"),
            ("section.toml", "evaluate = 3\n", "[evaluate]"),
        ] {
            // A top-level key must come before the first table.
            let text = if extra.starts_with('[') { format!("{TRAIN}{extra}") } else { format!("{extra}{TRAIN}") };
            let msg = format!("{:#}", load_run_config(&write(name, &text), &[]).unwrap_err());
            assert!(msg.contains(want), "{name}: {msg}");
        }
    }
}
