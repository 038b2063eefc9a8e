//! `bootflow gradvar`: the variance of each gradient estimator at fixed flow parameters, as the
//! gradient-estimator paper measures training quality (docs/metrics.md §2.2): `B` fresh batches of
//! the training batch size, one gradient each, and `Var = (1/P) sum_p Var_b[g_p]` over the `P`
//! flow parameters, with the free energy `F_q` and the spread of the signal `s = log q - log p~`
//! on fresh samples beside them.

use std::path::PathBuf;
use std::time::Instant;

use serde::Serialize;
use serde_json::{Value, json};

use crate::error::{Error, Result, ResultExt};
use crate::flow::Flow;
use crate::model::objective::Objective;
use crate::model::target::Target;
use crate::run::progress::RunProgress;
use crate::run::sample::load_checkpoint;
use crate::run::{CONFIG_FILE, RunSpec, build_target};
use crate::train::checkpoint::CHECKPOINT_FILE;
use crate::train::config::{Component, TrainConfig};
use crate::train::kl::Estimator;
use crate::{Registry, rng};

/// Estimator names `bootflow gradvar` knows: the reverse-KL ones, then the forward-KL ones.
pub const ESTIMATORS: [&str; 7] = ["g1", "g2", "g3", "path", "fast-path", "ml", "forward-path"];

/// Fresh samples per batch of the signal's statistics (bounds the memory of a pass).
const SIGNAL_CHUNK: usize = 10_000;

/// Everything `bootflow gradvar` is asked to do.
#[derive(Clone, Debug)]
pub struct GradVarRequest {
    /// A train config (TOML) or a run directory holding `config.toml`: the target, and the flow
    /// and batch size when no checkpoint is given.
    pub source: PathBuf,
    /// The parameters to measure at: a checkpoint file (default: the run directory's own; for a
    /// config, the flow as initialised by its seed).
    pub checkpoint: Option<PathBuf>,
    /// Estimator names from [`ESTIMATORS`].
    pub estimators: Vec<String>,
    /// Gradients per estimator.
    pub batches: usize,
    /// Samples per gradient (default: the config objective's `batch`, else 256).
    pub batch: Option<usize>,
    /// Fresh samples for `F_q` and the signal's spread.
    pub samples: usize,
    /// Seed of the random streams (estimator `k` of [`ESTIMATORS`] draws from stream `k + 1`,
    /// the signal from stream 0), so an estimator's figures do not depend on which others run.
    pub seed: u64,
}

/// One estimator's figures.
#[derive(Clone, Debug, Serialize)]
pub struct EstimatorVariance {
    /// The estimator's name.
    pub estimator: String,
    /// `(1/P) sum_p Var_b[g_p]` (the paper's eq. 45), sample variances over the batches.
    pub variance: f64,
    /// Its square root.
    pub sd: f64,
    /// Euclidean norm of the mean gradient over the batches.
    pub mean_norm: f64,
    /// Wall time per gradient.
    pub seconds_per_gradient: f64,
}

/// What `bootflow gradvar` reports.
#[derive(Clone, Debug, Serialize)]
pub struct GradVar {
    /// The target's name (or script path).
    pub target: String,
    /// Training steps behind the parameters (0 for an initialised flow).
    pub step: u64,
    /// Number of flow parameters `P`.
    pub params: usize,
    /// Samples per gradient.
    pub batch: usize,
    /// Gradients per estimator.
    pub batches: usize,
    /// `F_q = mean s` on the fresh samples.
    pub free_energy: f64,
    /// Standard deviation of `s` on the fresh samples (0 when q = p).
    pub signal_sd: f64,
    /// Fresh samples behind `free_energy` and `signal_sd`.
    pub samples: usize,
    /// One row per estimator, in the order asked.
    pub estimators: Vec<EstimatorVariance>,
}

impl GradVar {
    /// The report as JSON.
    pub fn to_json(&self) -> Value {
        json!(self)
    }
}

/// The objective whose gradient is estimator `name`, on batches of `batch`; forward-KL ones
/// read the training objective's samples when it is `forward-kl` and has them.
fn objective_for(name: &str, batch: usize, own: &Component, registry: &Registry) -> Result<Box<dyn Objective>> {
    let (objective, mut cfg) = match name {
        "ml" => ("forward-kl", json!({"batch": batch, "estimator": "ml"})),
        "forward-path" => ("forward-kl", json!({"batch": batch, "estimator": "path"})),
        _ => ("kl", json!({"batch": batch, "estimator": name})),
    };
    if objective == "forward-kl" && own.name == "forward-kl" {
        for key in ["samples", "held_out"] {
            if let Some(v) = own.params.get(key) {
                cfg[key] = v.clone();
            }
        }
    }
    registry.objective(objective, &cfg).with_context(|| format!("estimator {name}"))
}

/// Samples per gradient: the training objective's `batch`, else 256.
fn batch_of(own: &Component) -> usize {
    own.params.get("batch").and_then(Value::as_u64).map_or(256, |b| b as usize)
}

/// The reverse-KL estimators `target` allows: all five with its gradient, else g1 and g2.
pub fn default_estimators(target: &dyn Target) -> Vec<String> {
    let n = if target.has_grad() { 5 } else { 2 };
    ESTIMATORS[..n].iter().map(|e| e.to_string()).collect()
}

/// Checks estimator `names` against the target and the training objective `own`; `what` (a
/// flag or key) starts every message.
fn check_estimators(what: &str, names: &[String], target: &dyn Target, own: &Component) -> Result<()> {
    if names.is_empty() {
        return Err(Error::Config(format!("{what}: name at least one estimator")));
    }
    let has_samples = own.name == "forward-kl" && own.params.contains_key("samples");
    for name in names {
        let needs_grad = match name.as_str() {
            "ml" => false,
            "forward-path" => true,
            other => match serde_json::from_value::<Estimator>(json!(other)) {
                Ok(e) => e.needs_target_grad(),
                Err(_) => {
                    return Err(Error::Config(format!(
                        "{what}: unknown estimator '{name}' (known: {})",
                        ESTIMATORS.join(", ")
                    )));
                }
            },
        };
        if needs_grad && !target.has_grad() {
            return Err(Error::Unsupported(format!(
                "{what}: {name} needs the target's gradient, which this target does not provide"
            )));
        }
        if matches!(name.as_str(), "ml" | "forward-path") && !target.has_sampler() && !has_samples {
            return Err(Error::Unsupported(format!(
                "{what}: {name} needs target samples: the target has no exact sampler and the config's forward-kl objective names no `samples`"
            )));
        }
    }
    Ok(())
}

/// Checks the request before any work is done.
fn check_request(req: &GradVarRequest, target: &dyn Target, spec: &RunSpec) -> Result<()> {
    check_estimators("--estimators", &req.estimators, target, &spec.train.objective)?;
    if req.batches < 2 {
        return Err(Error::Config(format!("--batches {}: a variance needs at least 2 batches", req.batches)));
    }
    if req.batch.is_some_and(|b| b < 2) {
        return Err(Error::Config("--batch must be at least 2".into()));
    }
    if req.samples < 2 {
        return Err(Error::Config(format!("--samples {}: the signal's spread needs at least 2 samples", req.samples)));
    }
    Ok(())
}

/// The spec and, where there is one, the checkpoint of a config file or run directory.
fn read_source(req: &GradVarRequest) -> Result<(RunSpec, Option<PathBuf>)> {
    let src = &req.source;
    if src.is_dir() {
        let spec = RunSpec::from_file(&src.join(CONFIG_FILE), &[])?;
        let own = src.join(CHECKPOINT_FILE);
        Ok((spec, req.checkpoint.clone().or_else(|| own.is_file().then_some(own))))
    } else if src.is_file() {
        Ok((RunSpec::from_file(src, &[])?, req.checkpoint.clone()))
    } else {
        Err(Error::Config(format!("{}: no such config file or run directory", src.display())))
    }
}

/// Runs `bootflow gradvar`.
pub fn gradvar(req: &GradVarRequest, registry: &Registry, progress: &dyn RunProgress) -> Result<GradVar> {
    let (spec, checkpoint) = read_source(req)?;
    let cfg = &spec.train;
    let target = build_target(registry, &cfg.target.name, &cfg.target.params.clone().into_iter().collect())?;
    check_request(req, target.as_ref(), &spec)?;
    let (flow, step) = match &checkpoint {
        Some(path) => {
            let (c, flow) = load_checkpoint(registry, path)?;
            (flow, c.step)
        }
        None => {
            // The flow a fresh training run would start from, `flow.init` included.
            let init = crate::train::init::initialise(registry, target.as_ref(), &cfg.flow, cfg.seed)?;
            (registry.flow(target.dim(), &init.spec, cfg.seed).context("building the flow")?, 0)
        }
    };
    if flow.dim() != target.dim() {
        return Err(Error::Config(format!(
            "the checkpoint's flow has dimension {} but the target has dimension {}",
            flow.dim(),
            target.dim()
        )));
    }
    let batch = req.batch.unwrap_or_else(|| batch_of(&cfg.objective));
    let names = crate::run::budget::SizeNames { samples: "--batch", ..crate::run::budget::FLAGS };
    crate::run::budget::check_evaluation(names, flow.dim(), &cfg.flow, batch, 0)?;

    let counter = progress.counter("gradients", (req.estimators.len() * req.batches) as u64);
    let stop = progress.stop();
    let tick = || {
        if stop.as_ref().is_some_and(|f| f.load(std::sync::atomic::Ordering::Relaxed)) {
            return Err(Error::Interrupted);
        }
        counter.advance(1);
        Ok(())
    };
    let mut rows = Vec::with_capacity(req.estimators.len());
    for name in &req.estimators {
        let k = ESTIMATORS.iter().position(|e| e == name).expect("checked above") as u64;
        let mut objective = objective_for(name, batch, &cfg.objective, registry)?;
        let mut r = rng::stream(req.seed, k + 1);
        let started = Instant::now();
        let (variance, mean_norm) =
            match gradient_variance(&flow, target.as_ref(), objective.as_mut(), req.batches, &mut r, &tick) {
                Err(Error::Interrupted) => return Err(Error::Interrupted),
                other => other.with_context(|| format!("estimator {name}"))?,
            };
        rows.push(EstimatorVariance {
            estimator: name.clone(),
            variance,
            sd: variance.sqrt(),
            mean_norm,
            seconds_per_gradient: started.elapsed().as_secs_f64() / req.batches as f64,
        });
    }
    counter.finish();
    let (free_energy, signal_sd) = signal_stats(&flow, target.as_ref(), req.samples, &mut rng::stream(req.seed, 0))?;
    Ok(GradVar {
        target: cfg.target.name.clone(),
        step,
        params: flow.n_params(),
        batch,
        batches: req.batches,
        free_energy,
        signal_sd,
        samples: req.samples,
        estimators: rows,
    })
}

/// Streams of the measurements during training (plus 8 per step: the signal, then one per
/// estimator of [`ESTIMATORS`]), apart from training's and the evaluations'.
pub(crate) const PROBE_STREAM: u64 = 0x6772_6164 << 32;

/// One measurement during training: the signal's statistics and each estimator's figures.
#[derive(Clone, Debug)]
pub struct GradVarPoint {
    /// `F_q = mean s` on `train.eval_samples` fresh samples.
    pub free_energy: f64,
    /// Standard deviation of `s` on them.
    pub signal_sd: f64,
    /// One row per estimator, in the configured order.
    pub estimators: Vec<EstimatorVariance>,
}

/// The periodic measurements of `train.gradvar_every`: each estimator's gradient on
/// `gradvar_batches` fresh batches of the training batch size at the current parameters, from
/// streams of their own (training draws nothing less or more).
pub struct GradVarProbe {
    objectives: Vec<(u64, String, Box<dyn Objective>)>,
    batches: usize,
    samples: usize,
}

impl GradVarProbe {
    /// The probe `train` asks for (`None` when `gradvar_every` is 0), its estimators checked
    /// against `target` and the training objective `own`.
    pub fn new(registry: &Registry, target: &dyn Target, train: &TrainConfig, own: &Component) -> Result<Option<Self>> {
        if train.gradvar_every == 0 {
            return Ok(None);
        }
        if train.gradvar_batches < 2 {
            return Err(Error::Config(format!(
                "train.gradvar_batches: must be at least 2 (a variance needs two gradients), got {}",
                train.gradvar_batches
            )));
        }
        let names = if train.gradvar_estimators.is_empty() {
            default_estimators(target)
        } else {
            train.gradvar_estimators.clone()
        };
        check_estimators("train.gradvar_estimators", &names, target, own)?;
        let batch = batch_of(own);
        let mut objectives = Vec::with_capacity(names.len());
        for name in names {
            let k = ESTIMATORS.iter().position(|e| *e == name).expect("checked above") as u64;
            objectives.push((k, name.clone(), objective_for(&name, batch, own, registry)?));
        }
        Ok(Some(Self { objectives, batches: train.gradvar_batches, samples: train.eval_samples.max(2) }))
    }

    /// Measures at the flow's parameters after `step` steps of the run seeded with `seed`;
    /// `tick` runs after every gradient (where an interrupt ends the measurement).
    pub fn measure(
        &mut self,
        flow: &Flow,
        target: &dyn Target,
        seed: u64,
        step: u64,
        tick: &dyn Fn() -> Result<()>,
    ) -> Result<GradVarPoint> {
        let base = PROBE_STREAM + 8 * step;
        let mut estimators = Vec::with_capacity(self.objectives.len());
        for (k, name, objective) in &mut self.objectives {
            let started = Instant::now();
            let mut r = rng::stream(seed, base + *k + 1);
            let (variance, mean_norm) =
                match gradient_variance(flow, target, objective.as_mut(), self.batches, &mut r, tick) {
                    Err(Error::Interrupted) => return Err(Error::Interrupted),
                    other => other.with_context(|| format!("gradient variance of {name} at step {step}"))?,
                };
            estimators.push(EstimatorVariance {
                estimator: name.clone(),
                variance,
                sd: variance.sqrt(),
                mean_norm,
                seconds_per_gradient: started.elapsed().as_secs_f64() / self.batches as f64,
            });
        }
        let (free_energy, signal_sd) = signal_stats(flow, target, self.samples, &mut rng::stream(seed, base))?;
        Ok(GradVarPoint { free_energy, signal_sd, estimators })
    }
}

/// `(1/P) sum_p Var_b[g_p]` over `batches` gradients of `objective` at the flow's parameters
/// (Welford's update, so memory stays at two vectors of `P`), and the norm of the mean gradient.
pub fn gradient_variance(
    flow: &Flow,
    target: &dyn Target,
    objective: &mut dyn Objective,
    batches: usize,
    r: &mut rng::Rng,
    tick: &dyn Fn() -> Result<()>,
) -> Result<(f64, f64)> {
    let p = flow.n_params();
    let (mut mean, mut m2) = (vec![0.0; p], vec![0.0; p]);
    for b in 0..batches {
        let g = objective.estimate(flow, target, r)?.grad;
        if let Some(i) = g.iter().position(|v| !v.is_finite()) {
            return Err(Error::NonFinite(format!("gradient component {i} of batch {b} is {}", g[i])));
        }
        let n = (b + 1) as f64;
        for ((m, s), v) in mean.iter_mut().zip(m2.iter_mut()).zip(&g) {
            let d = v - *m;
            *m += d / n;
            *s += d * (v - *m);
        }
        tick()?;
    }
    let variance = m2.iter().sum::<f64>() / ((batches - 1) as f64 * p.max(1) as f64);
    Ok((variance, mean.iter().map(|v| v * v).sum::<f64>().sqrt()))
}

/// `F_q = mean s` and the standard deviation of `s = log q - log p~` on `n` fresh flow samples.
fn signal_stats(flow: &Flow, target: &dyn Target, n: usize, r: &mut rng::Rng) -> Result<(f64, f64)> {
    let mut s = Vec::with_capacity(n);
    while s.len() < n {
        let m = SIGNAL_CHUNK.min(n - s.len());
        let (x, log_q) = flow.sample_with_log_q(m, r)?;
        let mut log_p = vec![0.0; m];
        target.log_prob_batch(&x, &mut log_p)?;
        s.extend(log_q.iter().zip(&log_p).map(|(q, p)| q - p));
    }
    let mean = s.iter().sum::<f64>() / n as f64;
    let var = s.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    Ok((mean, var.sqrt()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::affine::ElementwiseAffine;
    use crate::model::objective::ObjectiveOutput;
    use crate::train::test_support::Gaussian;

    /// Returns the listed gradients in turn.
    struct Scripted(Vec<Vec<f64>>);

    impl Objective for Scripted {
        fn estimate(&mut self, _: &Flow, _: &dyn Target, _: &mut rng::Rng) -> Result<ObjectiveOutput> {
            Ok(ObjectiveOutput { grad: self.0.remove(0), ..Default::default() })
        }
    }

    #[test]
    fn variance_is_the_mean_over_parameters_of_each_components_sample_variance() {
        let flow = Flow::new(1, vec![Box::new(ElementwiseAffine::new(1))]).unwrap();
        let target = Gaussian { mu: vec![0.0], sigma: vec![1.0] };
        // Component 0: 1, 3, 5 (variance 4); component 1: 2, 6, 10 (variance 16).
        let mut obj = Scripted(vec![vec![1.0, 2.0], vec![3.0, 6.0], vec![5.0, 10.0]]);
        let ticks = std::cell::Cell::new(0);
        let tick = || {
            ticks.set(ticks.get() + 1);
            Ok(())
        };
        let (var, norm) = gradient_variance(&flow, &target, &mut obj, 3, &mut rng::stream(0, 0), &tick).unwrap();
        assert_eq!((var, norm, ticks.get()), (10.0, 45f64.sqrt(), 3));
        let mut bad = Scripted(vec![vec![1.0, 2.0], vec![f64::NAN, 0.0]]);
        let err = gradient_variance(&flow, &target, &mut bad, 2, &mut rng::stream(0, 0), &tick).unwrap_err();
        assert!(err.to_string().contains("component 0 of batch 1"), "{err}");
    }
}
