//! Estimates of a trained flow (`bootflow estimate`, and the evaluate step of `bootflow run`):
//! the flow's ESS, log Z, forward ESS, test-set and test-function figures, with AIS towards p
//! when the run trained with FAB or the caller asks for it.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::diagnostics::eval::{AisEvalConfig, EvalConfig, FlowEval, evaluate_flow};
use crate::diagnostics::log_z_batches::{LogZBatches, log_z_batches};
use crate::diagnostics::warnings;
use crate::error::{Error, Result, ResultExt};
use crate::registry::parse_config;
use crate::run::spec::RunSpec;
use crate::run::target::build_target;
use crate::train::checkpoint::{CHECKPOINT_FILE, Checkpoint};
use crate::train::fab::FabConfig;
use crate::{Flow, Registry, Target, rng};

/// Output file written next to the checkpoint.
pub const ESTIMATE_FILE: &str = "estimate.json";

/// What `bootflow estimate` is asked to do.
#[derive(Clone, Debug)]
pub struct EstimateRequest {
    /// The run's checkpoint (`RUN/checkpoint.json`) or its run directory.
    pub flow: PathBuf,
    /// Fresh flow samples (and exact target samples) per estimate.
    pub samples: usize,
    /// Intermediate distributions of AIS towards p (`Some(0)`: no AIS; `None`: the FAB run's own
    /// count, none for other objectives).
    pub ais_steps: Option<usize>,
    /// Seed of the evaluation's random streams.
    pub seed: u64,
    /// The log Z accuracy protocol: `(K, M)` runs `K` independent estimates of `M` samples each.
    pub log_z_batches: Option<(usize, usize)>,
}

/// Fewest samples `estimate` accepts.
pub const MIN_SAMPLES: usize = 100;

/// The estimates of a trained flow, as written to `estimate.json`.
#[derive(Clone, Debug)]
pub struct Estimate {
    /// The figures.
    pub eval: FlowEval,
    /// The run's target name (or script path).
    pub target: String,
    /// The run's objective name.
    pub objective: String,
    /// Training steps of the checkpoint.
    pub step: u64,
    /// Training time of the checkpoint.
    pub train_seconds: f64,
    /// Seed of the evaluation.
    pub seed: u64,
    /// The log Z accuracy protocol's figures, when asked for.
    pub log_z_batches: Option<LogZBatches>,
}

impl Estimate {
    /// The JSON of `estimate.json`: the figures with the run's facts added.
    pub fn to_json(&self) -> Result<Value> {
        let mut out = serde_json::to_value(&self.eval).map_err(|e| Error::Other(e.to_string()))?;
        if let Value::Object(m) = &mut out {
            m.insert("target".into(), Value::from(self.target.clone()));
            m.insert("objective".into(), Value::from(self.objective.clone()));
            m.insert("step".into(), Value::from(self.step));
            m.insert("train_seconds".into(), Value::from(self.train_seconds));
            m.insert("seed".into(), Value::from(self.seed));
            if let Some(b) = &self.log_z_batches {
                m.insert("log_z_batches".into(), serde_json::to_value(b).map_err(|e| Error::Other(e.to_string()))?);
            }
            m.insert(warnings::KEY.into(), serde_json::json!(warnings::for_flow(&self.eval)));
        }
        Ok(out)
    }
}

/// The run directory of a checkpoint path (or the directory itself).
fn run_dir(flow: &Path) -> PathBuf {
    if flow.is_dir() {
        return flow.to_path_buf();
    }
    match flow.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// AIS settings: the FAB run's kernel, spacing and tuned step sizes; for other runs `hmc` (if
/// available, else `rwm`) with adaptation on. `None` when there are no AIS steps.
pub fn ais_config(c: &Checkpoint, steps: Option<usize>, registry: &Registry) -> Result<Option<AisEvalConfig>> {
    let fab = if c.objective.name == "fab" {
        Some(parse_config::<FabConfig>("fab objective", &c.objective.config())?)
    } else {
        None
    };
    let k = match (steps, &fab) {
        (Some(k), _) => k,
        (None, Some(f)) => f.n_intermediate,
        (None, None) => 0,
    };
    if k == 0 {
        return Ok(None);
    }
    Ok(Some(match fab {
        Some(f) => {
            let tuned: Option<Vec<Vec<f64>>> =
                c.objective_state.get("kernels").and_then(|v| serde_json::from_value(v.clone()).ok());
            // With another number of transitions, each starts from the first tuned state.
            let kernel_state =
                tuned.filter(|t| !t.is_empty()).map(|t| if t.len() == k { t } else { vec![t[0].clone(); k] });
            AisEvalConfig {
                n_intermediate: k,
                spacing: f.spacing,
                kernel: f.kernel,
                kernel_config: f.kernel_config,
                kernel_state,
                adapt: f.adapt,
            }
        }
        None => {
            let hmc = registry.kernels.contains_key("hmc");
            AisEvalConfig {
                n_intermediate: k,
                spacing: Default::default(),
                kernel: if hmc { "hmc" } else { "rwm" }.into(),
                kernel_config: if hmc { json!({ "n_leapfrog": 5, "target_accept": 0.65 }) } else { Value::Null },
                kernel_state: None,
                adapt: true,
            }
        }
    }))
}

/// Runs `bootflow estimate`: rebuilds the trained flow and its target from the run directory,
/// evaluates the flow and writes `estimate.json` next to the checkpoint.
pub fn estimate(req: &EstimateRequest, registry: &Registry) -> Result<Estimate> {
    let given = req.flow.display();
    if !req.flow.exists() {
        return Err(Error::Config(format!("--flow {given}: no such file or directory")));
    }
    if req.flow.is_file() && req.flow.file_name().is_none_or(|n| n != CHECKPOINT_FILE) {
        return Err(Error::Config(format!("--flow {given}: expected a run directory or its {CHECKPOINT_FILE}")));
    }
    let dir = run_dir(&req.flow);
    let c = Checkpoint::read(&dir).with_context(|| format!("reading the checkpoint in {}", dir.display()))?;
    // A `bootflow run` config adds [evaluate] and [sample] to the train config.
    let cfg = RunSpec::from_file(&dir.join("config.toml"), &[])?.train;
    let target = build_target(registry, &cfg.target.name, &cfg.target.params.clone().into_iter().collect())?;
    let shown = dir.join(CHECKPOINT_FILE).display().to_string();
    crate::run::budget::check_dimension("the checkpoint's flow.dim", c.flow.dim as f64)
        .with_context(|| format!("checkpoint {shown}"))?;
    let mut flow = registry
        .flow(c.flow.dim, &c.flow.spec, c.flow.seed)
        .with_context(|| format!("rebuilding the flow of checkpoint {shown}"))?;
    flow.set_params(&c.params).with_context(|| format!("loading params of checkpoint {shown}"))?;
    if let Some((k, m)) = req.log_z_batches {
        check_log_z_batches(&c, target.as_ref(), req, k, m)?;
    }
    let eval = evaluate_checkpoint(&c, &flow, target.as_ref(), req, registry)?;
    let batches = match req.log_z_batches {
        Some((k, m)) => {
            // Stream 1 of the seed: the protocol's draws are independent of the evaluation's.
            let ais = ais_config(&c, req.ais_steps, registry)?;
            let r = log_z_batches(&flow, target.as_ref(), ais.as_ref(), k, m, registry, &mut rng::stream(req.seed, 1))
                .context("the log Z batches")?;
            Some(r)
        }
        None => None,
    };
    let estimate = Estimate {
        eval,
        target: cfg.target.name.clone(),
        objective: c.objective.name.clone(),
        step: c.step,
        train_seconds: c.elapsed_seconds,
        seed: req.seed,
        log_z_batches: batches,
    };
    let text = serde_json::to_string_pretty(&estimate.to_json()?).map_err(|e| Error::Other(e.to_string()))?;
    std::fs::write(dir.join(ESTIMATE_FILE), &text)
        .with_context(|| format!("writing {ESTIMATE_FILE} in {}", dir.display()))?;
    Ok(estimate)
}

/// Refuses a protocol that cannot run (no known log Z) or would not fit in memory, before any
/// sample is drawn.
fn check_log_z_batches(c: &Checkpoint, target: &dyn Target, req: &EstimateRequest, k: usize, m: usize) -> Result<()> {
    crate::diagnostics::log_z_batches::check_request(target, k, m)?;
    crate::run::budget::check_evaluation(
        crate::run::budget::SizeNames { samples: "--batch-samples", ..crate::run::budget::FLAGS },
        c.flow.dim,
        &c.flow.spec,
        m,
        req.ais_steps.unwrap_or(0),
    )
}

/// The figures of `bootflow estimate` for the flow of checkpoint `c` (with `c`'s parameters or
/// others) on `target`: `req.samples`, `req.ais_steps` and `req.seed` are used, `req.flow` is not.
pub fn evaluate_checkpoint(
    c: &Checkpoint,
    flow: &Flow,
    target: &dyn Target,
    req: &EstimateRequest,
    registry: &Registry,
) -> Result<FlowEval> {
    if req.samples < MIN_SAMPLES {
        return Err(Error::Config(format!(
            "--samples {}: an estimate needs at least {MIN_SAMPLES} samples (with fewer, ESS and the error of log Z mean nothing)",
            req.samples
        )));
    }
    crate::run::budget::check_evaluation(
        crate::run::budget::FLAGS,
        c.flow.dim,
        &c.flow.spec,
        req.samples,
        req.ais_steps.unwrap_or(0),
    )?;
    let eval_cfg =
        EvalConfig { samples: req.samples, ais: ais_config(c, req.ais_steps, registry)?, ..Default::default() };
    let mut r = rng::stream(req.seed, 0);
    evaluate_flow(flow, target, &eval_cfg, registry, &mut r).context("evaluating the flow")
}

/// The evaluation of a freshly trained flow as a run spec's `[evaluate]` says (stream 1 of the
/// run's seed); `estimate` computes the same figures from the files.
pub(crate) fn evaluate_trained(
    dir: &Path,
    spec: &RunSpec,
    flow: &Flow,
    target: &dyn Target,
    registry: &Registry,
) -> Result<FlowEval> {
    let c = Checkpoint::read(dir)?;
    let ais = ais_config(&c, spec.evaluate.ais, registry)?;
    let cfg = EvalConfig { samples: spec.evaluate.samples, ais, ..Default::default() };
    let mut r = rng::stream(spec.train.seed, 1);
    evaluate_flow(flow, target, &cfg, registry, &mut r).context("evaluating the flow")
}
