//! The training loop: it owns iteration, the optimiser and the random stream; the objective
//! supplies loss and gradient; observers receive metrics and checkpoints.
//!
//! A step whose loss or gradient is not finite (or whose objective reports
//! [`Error::NonFinite`]) is skipped and counted: the parameters, the optimiser and the objective's
//! post-update hook are left untouched. Everything else an objective reports is an error.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use crate::diagnostics::eval::{EvalConfig, evaluate_flow};
use crate::error::{Error, Result, ResultExt, check_dim};
use crate::flow::Flow;
use crate::model::objective::Objective;
use crate::model::target::Target;
use crate::registry::{FlowSpec, Registry};
use crate::rng::{self, Rng};
use crate::run::gradvar::GradVarProbe;
use crate::train::checkpoint::{Checkpoint, FORMAT, FlowRecord};
use crate::train::config::{Component, RunConfig, TrainConfig};
use crate::train::observer::{
    CheckpointWriter, EvalCsv, GradVarCsv, MetricsCsv, Observer, Progress, truncate_log_after,
};
use crate::train::optim::Adam;

/// Stream of the run seed reserved for training (flow initialisation uses the layer seeds).
const TRAIN_STREAM: u64 = 0x0074_7261_696e;
/// Streams of periodic evaluations (plus the step), apart from training's so that evaluating
/// never changes what is trained.
const EVAL_STREAM: u64 = 0x6576_616c << 32;

/// What one step did.
#[derive(Clone, Debug)]
pub struct StepOutcome {
    /// The objective's loss; `None` if the step was skipped.
    pub loss: Option<f64>,
    /// Gradient norm before clipping; `None` if the step was skipped.
    pub grad_norm: Option<f64>,
    /// The objective's diagnostics for this step (empty if skipped).
    pub metrics: Vec<(String, f64)>,
}

/// A training run in progress.
pub struct Trainer {
    flow_record: FlowRecord,
    flow: Flow,
    target: Box<dyn Target>,
    objective_config: Component,
    objective: Box<dyn Objective>,
    train: TrainConfig,
    optimiser: Adam,
    rng: Rng,
    step: u64,
    skipped: u64,
    /// Skipped steps since the last applied one.
    skipped_in_a_row: u64,
    elapsed: f64,
    last_checkpoint: Option<u64>,
    observers: Vec<Box<dyn Observer>>,
    stop: Option<Arc<AtomicBool>>,
    /// The measurements of `train.gradvar_every`, when asked for.
    gradvar: Option<GradVarProbe>,
    /// What `flow.init` chose for a fresh run.
    init_note: Option<String>,
}

/// The memory the run would need, checked before anything is built.
fn check_budget(dim: usize, flow: &FlowSpec, objective: &Component, train: &TrainConfig) -> Result<()> {
    let eval_samples = if train.eval_every > 0 { train.eval_samples } else { 0 };
    crate::run::budget::check_training(dim, flow, objective, eval_samples)
}

/// The checks of `train` that come before any work (the `flow.init` fit included).
fn check_train(train: &TrainConfig) -> Result<()> {
    if train.log_every == 0 {
        return Err(Error::Config("train.log_every must be at least 1".into()));
    }
    if train.lr_final.is_some_and(|l| !(l > 0.0 && l.is_finite())) {
        return Err(Error::Config("train.lr_final must be a positive number".into()));
    }
    Ok(())
}

impl Trainer {
    /// A fresh run: the flow is built from `flow` with `seed` after its `flow.init` is resolved
    /// ([`crate::initialise`]; [`Trainer::init_note`] says what it chose), training draws
    /// from its own stream.
    pub fn new(
        registry: &Registry,
        target: Box<dyn Target>,
        seed: u64,
        flow: &FlowSpec,
        objective: &Component,
        train: &TrainConfig,
    ) -> Result<Self> {
        check_train(train)?;
        // Refuse a bad flow or objective before the fit, which may take seconds.
        check_budget(target.dim(), flow, objective, train)?;
        registry.flow(target.dim(), flow, seed)?;
        registry
            .objective(&objective.name, &objective.config())
            .context("[objective]")?
            .check_target(target.as_ref())
            .context("[objective]")?;
        let init = crate::train::init::initialise(registry, target.as_ref(), flow, seed)?;
        let mut t = Self::build(registry, target, seed, &init.spec, objective, train)?;
        t.init_note = init.note;
        Ok(t)
    }

    /// A run of the flow `flow` describes as it stands (a recorded spec: `init` resolved).
    fn build(
        registry: &Registry,
        target: Box<dyn Target>,
        seed: u64,
        flow: &FlowSpec,
        objective: &Component,
        train: &TrainConfig,
    ) -> Result<Self> {
        check_train(train)?;
        let dim = target.dim();
        check_budget(dim, flow, objective, train)?;
        let built = registry.flow(dim, flow, seed)?;
        let optimiser = Adam::new(train.adam(), built.n_params())?;
        let built_objective = registry.objective(&objective.name, &objective.config()).context("[objective]")?;
        built_objective.check_target(target.as_ref()).context("[objective]")?;
        let gradvar = GradVarProbe::new(registry, target.as_ref(), train, objective)?;
        Ok(Self {
            flow_record: FlowRecord { spec: flow.clone(), seed, dim },
            flow: built,
            target,
            objective_config: objective.clone(),
            objective: built_objective,
            train: train.clone(),
            optimiser,
            rng: rng::stream(seed, TRAIN_STREAM),
            step: 0,
            skipped: 0,
            skipped_in_a_row: 0,
            elapsed: 0.0,
            last_checkpoint: None,
            observers: Vec::new(),
            stop: None,
            gradvar,
            init_note: None,
        })
    }

    /// What `flow.init` fitted for this fresh run (`None` when it added no layer, and on resume).
    pub fn init_note(&self) -> Option<&str> {
        self.init_note.as_deref()
    }

    /// A fresh run from a whole run config (the target is built by the caller: it may be a
    /// script or come from a plugin).
    pub fn from_config(registry: &Registry, target: Box<dyn Target>, cfg: &RunConfig) -> Result<Self> {
        Self::new(registry, target, cfg.seed, &cfg.flow, &cfg.objective, &cfg.train)
    }

    /// Continues the run saved in `dir` exactly where its checkpoint left it, appending to its
    /// `metrics.csv` (and `eval.csv`) after dropping rows logged past the checkpoint, and
    /// overwriting its checkpoint.
    pub fn resume(dir: &Path, registry: &Registry, target: Box<dyn Target>) -> Result<Self> {
        let c = Checkpoint::read(dir)?;
        for log in ["metrics.csv", "eval.csv", "gradvar.csv"] {
            truncate_log_after(&dir.join(log), c.step)?;
        }
        check_dim("target dimension of the resumed run", target.dim(), c.flow.dim)?;
        let mut t = Self::build(registry, target, c.flow.seed, &c.flow.spec, &c.objective, &c.train)?;
        t.flow.set_params(&c.params)?;
        t.objective.set_state(&c.objective_state)?;
        t.optimiser = c.optimiser;
        t.rng = c.rng;
        t.step = c.step;
        t.skipped = c.skipped_steps;
        t.elapsed = c.elapsed_seconds;
        t.last_checkpoint = Some(c.step);
        t.write_to(dir)
    }

    /// Writes `metrics.csv` (appending) and checkpoints into `dir`, creating it.
    pub fn write_to(mut self, dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        self.observers.push(Box::new(MetricsCsv::open(dir)?));
        if self.train.eval_every > 0 {
            self.observers.push(Box::new(EvalCsv::open(dir)?));
        }
        self.observers.push(Box::new(GradVarCsv::new(dir)));
        self.observers.push(Box::new(CheckpointWriter::new(dir)));
        Ok(self)
    }

    /// Adds an observer (progress bar, custom logging).
    pub fn observe(&mut self, observer: Box<dyn Observer>) {
        self.observers.push(observer);
    }

    /// The flow being trained, with its current parameters.
    pub fn flow(&self) -> &Flow {
        &self.flow
    }
    /// The target the flow is trained towards.
    pub fn target(&self) -> &dyn Target {
        self.target.as_ref()
    }
    /// Steps taken so far, skipped ones included.
    pub fn step(&self) -> u64 {
        self.step
    }
    /// Steps skipped for a non-finite loss or gradient.
    pub fn skipped_steps(&self) -> u64 {
        self.skipped
    }
    /// The step count `run` stops at (`train.steps`).
    pub fn total_steps(&self) -> u64 {
        self.train.steps
    }
    /// Changes the number of steps `run` goes to (e.g. to extend a resumed run).
    pub fn set_total_steps(&mut self, steps: u64) {
        self.train.steps = steps;
    }

    /// Takes the keys of `train` that extend a run or change what it logs (steps, time budget,
    /// logging, checkpoint, evaluation and gradient-variance settings), keeping everything that
    /// decides what is trained (learning rates, clipping, decay).
    ///
    /// Fails when `train.steps` is below the steps already taken.
    pub fn extend(&mut self, train: &TrainConfig, registry: &Registry) -> Result<()> {
        if train.steps < self.step {
            return Err(Error::Config(format!(
                "train.steps = {} is below the {} steps the run has already taken: give at least that many to continue",
                train.steps, self.step
            )));
        }
        self.train.steps = train.steps;
        self.train.max_seconds = train.max_seconds;
        self.train.log_every = train.log_every;
        self.train.checkpoint_every = train.checkpoint_every;
        self.train.eval_every = train.eval_every;
        self.train.eval_samples = train.eval_samples;
        self.train.max_skipped = train.max_skipped;
        self.train.gradvar_every = train.gradvar_every;
        self.train.gradvar_batches = train.gradvar_batches;
        self.train.gradvar_estimators = train.gradvar_estimators.clone();
        self.gradvar = GradVarProbe::new(registry, self.target.as_ref(), &self.train, &self.objective_config)?;
        Ok(())
    }

    /// Makes [`Trainer::run`] stop after the step during which `flag` becomes true (an interrupt
    /// from the front end), with its final checkpoint.
    pub fn stop_when_set(&mut self, flag: Arc<AtomicBool>) {
        self.stop = Some(flag);
    }

    /// Whether the front end asked the run to stop.
    pub fn stop_requested(&self) -> bool {
        self.stop.as_ref().is_some_and(|f| f.load(Ordering::Relaxed))
    }

    /// Whether `train.max_seconds` of training time are spent.
    pub fn out_of_time(&self) -> bool {
        self.train.max_seconds.is_some_and(|m| self.elapsed >= m)
    }

    /// Trains until `train.steps` (or `train.max_seconds`, or a stop request) and writes a final
    /// checkpoint.
    pub fn run(&mut self) -> Result<()> {
        while self.step < self.train.steps && !self.out_of_time() && !self.stop_requested() {
            self.step_once()?;
        }
        if self.last_checkpoint != Some(self.step) {
            self.checkpoint()?;
        }
        Ok(())
    }

    /// Runs `n` more steps (no final checkpoint).
    pub fn run_for(&mut self, n: u64) -> Result<()> {
        for _ in 0..n {
            self.step_once()?;
        }
        Ok(())
    }

    /// One optimisation step, logging and checkpointing as configured.
    pub fn step_once(&mut self) -> Result<StepOutcome> {
        let start = Instant::now();
        let outcome = match self.objective.estimate(&self.flow, self.target.as_ref(), &mut self.rng) {
            Ok(o) if o.loss.is_finite() && o.grad.iter().all(|g| g.is_finite()) => {
                let mut p = self.flow.params();
                self.optimiser.config.lr = self.train.lr_at(self.step);
                let norm = self.optimiser.step(&mut p, &o.grad)?;
                self.flow.set_params(&p)?;
                self.objective.after_update(&self.flow)?;
                self.skipped_in_a_row = 0;
                StepOutcome { loss: Some(o.loss), grad_norm: Some(norm), metrics: o.metrics }
            }
            skipped @ (Ok(_) | Err(Error::NonFinite(_))) => {
                self.skipped += 1;
                self.skipped_in_a_row += 1;
                if self.skipped_in_a_row >= self.train.max_skipped.max(1) {
                    let cause = match skipped {
                        Err(Error::NonFinite(why)) => why,
                        Ok(o) if !o.loss.is_finite() => format!("the loss was {}", o.loss),
                        _ => "the gradient was not finite".into(),
                    };
                    return Err(Error::NonFinite(format!(
                        "training stopped after {} skipped steps in a row (steps {}..={}); last cause: {cause}; \
                         check the target's log-density where the flow samples, or lower train.lr \
                         (train.max_skipped sets how many are allowed)",
                        self.skipped_in_a_row,
                        self.step + 2 - self.skipped_in_a_row,
                        self.step + 1
                    )));
                }
                StepOutcome { loss: None, grad_norm: None, metrics: Vec::new() }
            }
            Err(e) => return Err(e),
        };
        self.step += 1;
        self.elapsed += start.elapsed().as_secs_f64();
        for o in &mut self.observers {
            o.on_step(self.step)?;
        }
        if self.step.is_multiple_of(self.train.log_every) {
            let mut metrics = outcome.metrics.clone();
            metrics.extend(self.objective.log_metrics(&self.flow)?);
            let p = Progress {
                step: self.step,
                total_steps: self.train.steps,
                seconds: self.elapsed,
                loss: outcome.loss,
                grad_norm: outcome.grad_norm,
                skipped_steps: self.skipped,
                metrics: &metrics,
            };
            for o in &mut self.observers {
                o.on_log(&p)?;
            }
        }
        if self.train.eval_every > 0 && self.step.is_multiple_of(self.train.eval_every) {
            self.evaluate()?;
        }
        if self.train.gradvar_every > 0 && self.step.is_multiple_of(self.train.gradvar_every) {
            self.measure_gradvar()?;
        }
        if self.train.checkpoint_every > 0 && self.step.is_multiple_of(self.train.checkpoint_every) {
            self.checkpoint()?;
        }
        Ok(outcome)
    }

    /// Measures each configured estimator's gradient variance and hands it to every observer;
    /// its time is not training time, and an interrupt ends it without a row.
    fn measure_gradvar(&mut self) -> Result<()> {
        let Some(probe) = &mut self.gradvar else { return Ok(()) };
        let stop = self.stop.clone();
        let tick = || match &stop {
            Some(flag) if flag.load(Ordering::Relaxed) => Err(Error::Interrupted),
            _ => Ok(()),
        };
        let point = match probe.measure(&self.flow, self.target.as_ref(), self.flow_record.seed, self.step, &tick) {
            Err(Error::Interrupted) => return Ok(()),
            other => other?,
        };
        for o in &mut self.observers {
            o.on_gradvar(self.step, self.elapsed, &point)?;
        }
        Ok(())
    }

    /// Evaluates the flow on `train.eval_samples` fresh samples (no AIS) and hands the figures to
    /// every observer; its time is not training time.
    fn evaluate(&mut self) -> Result<()> {
        let cfg = EvalConfig {
            samples: self.train.eval_samples,
            chunk: self.train.eval_samples.min(10_000),
            ais: None,
            bias_runs: 0,
            bias_samples: 1,
        };
        let mut rng = rng::stream(self.flow_record.seed, EVAL_STREAM + self.step);
        let eval = evaluate_flow(&self.flow, self.target.as_ref(), &cfg, &Registry::new(), &mut rng)?;
        for o in &mut self.observers {
            o.on_eval(self.step, self.elapsed, &eval)?;
        }
        Ok(())
    }

    /// The run's state now.
    pub fn snapshot(&self) -> Checkpoint {
        Checkpoint {
            format: FORMAT,
            flow: self.flow_record.clone(),
            params: self.flow.params(),
            objective: self.objective_config.clone(),
            objective_state: self.objective.state(),
            train: self.train.clone(),
            optimiser: self.optimiser.clone(),
            rng: self.rng.clone(),
            step: self.step,
            skipped_steps: self.skipped,
            elapsed_seconds: self.elapsed,
        }
    }

    /// Hands a checkpoint to every observer.
    pub fn checkpoint(&mut self) -> Result<()> {
        let c = self.snapshot();
        for o in &mut self.observers {
            o.on_checkpoint(&c)?;
        }
        self.last_checkpoint = Some(self.step);
        Ok(())
    }
}
