//! `bootflow.train`: the CLI's `train` from a config dict or TOML file, with overrides, on a
//! named target or one made in Python; the same run directory when `out` is given.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bootflow_core::FlowEval;
use bootflow_core::run::sets::set_path;
use bootflow_core::run::spec::load_table;
use bootflow_core::run::target::pin_script;
use bootflow_core::run::{RunSpec, TrainSummary, build_target, holds_run, write_config, write_summary};
use bootflow_core::{Observer, Trainer, TrainingProgress};
use pyo3::exceptions::{PyFileExistsError, PyTypeError};
use pyo3::prelude::*;
use serde_json::{Value, json};

use crate::errors::{bootflow_err, chain, parse_json, to_py};
use crate::flow::Flow;
use crate::progress::{PyProgress, TrainingObserver};
use crate::registry::registry;
use crate::target::Target;

/// The columns of `metrics.csv` (and of `eval.csv`), kept in memory as the run logs them.
#[derive(Default)]
struct Logged {
    metrics: Vec<(&'static str, Vec<Option<f64>>)>,
    evals: Vec<(&'static str, Vec<Option<f64>>)>,
}

impl Logged {
    fn push(table: &mut Vec<(&'static str, Vec<Option<f64>>)>, row: &[(&'static str, Option<f64>)]) {
        if table.is_empty() {
            table.extend(row.iter().map(|(k, _)| (*k, Vec::new())));
        }
        for ((_, col), (_, v)) in table.iter_mut().zip(row) {
            col.push(*v);
        }
    }

    fn to_json(table: &[(&'static str, Vec<Option<f64>>)]) -> Value {
        Value::Object(table.iter().map(|(k, v)| (k.to_string(), json!(v))).collect())
    }
}

/// Keeps every logged row.
struct Recorder(Arc<Mutex<Logged>>);

impl Observer for Recorder {
    fn on_log(&mut self, p: &TrainingProgress) -> bootflow_core::Result<()> {
        let row = [
            ("step", Some(p.step as f64)),
            ("seconds", Some(p.seconds)),
            ("loss", p.loss),
            ("ess", p.metric("ess")),
            ("grad_norm", p.grad_norm),
            ("skipped_steps", Some(p.skipped_steps as f64)),
            ("ais_accept", p.metric("ais_accept")),
            ("step_size", p.metric("step_size")),
            ("test_mean_log_q", p.metric("test_mean_log_q")),
        ];
        if let Ok(mut l) = self.0.lock() {
            Logged::push(&mut l.metrics, &row);
        }
        Ok(())
    }

    fn on_eval(&mut self, step: u64, seconds: f64, e: &FlowEval) -> bootflow_core::Result<()> {
        let row = [
            ("step", Some(step as f64)),
            ("seconds", Some(seconds)),
            ("flow_ess", Some(e.ess)),
            ("forward_ess", e.forward_ess),
            ("mean_log_q_target_samples", e.mean_log_q_target_samples),
            ("test_mean_log_q", e.test_mean_log_q),
            ("mis_accept", e.mis_accept),
        ];
        if let Ok(mut l) = self.0.lock() {
            Logged::push(&mut l.evals, &row);
        }
        Ok(())
    }
}

/// Trains a flow. `config` is a TOML file's path (`config_is_path`) or JSON text of the config
/// table; `overrides` JSON of dotted keys. Returns the flow, the logged metrics and evaluations (JSON of columns), the
/// summary (JSON) and whether Ctrl-C stopped the run.
#[pyfunction]
#[pyo3(signature = (config, config_is_path, overrides, target = None, out = None, progress = None))]
pub fn train(
    py: Python<'_>,
    config: &str,
    config_is_path: bool,
    overrides: &str,
    target: Option<&Target>,
    out: Option<PathBuf>,
    progress: Option<Py<PyAny>>,
) -> PyResult<(Flow, String, String, String, bool)> {
    let (mut table, origin) = if config_is_path {
        (load_table(Path::new(config), &[]).map_err(|e| bootflow_err(chain(&e)))?, config.to_string())
    } else {
        (parse_json("config", config)?, "the config dict".to_string())
    };
    let Value::Object(sets) = parse_json("overrides", overrides)? else {
        return Err(PyTypeError::new_err("overrides must be a dict of dotted keys"));
    };
    for (key, value) in sets {
        set_path(&mut table, &key, value).map_err(|e| bootflow_err(chain(&e).replace("--set", "overrides")))?;
    }
    if let Some(t) = target {
        // The target given is the one trained; the run records it (a Python callable by a name
        // that says so: the CLI cannot rebuild it).
        let spec = if t.spec.is_null() { json!({"name": "python-callable"}) } else { t.spec.clone() };
        set_path(&mut table, "target", spec).map_err(|e| bootflow_err(chain(&e)))?;
    }
    let spec = RunSpec::from_table(table, &origin).map_err(|e| bootflow_err(chain(&e)))?;
    let cfg = spec.train;
    let (boxed, parked) = match target {
        Some(t) => (t.boxed(), Some(t.parked.clone())),
        None => {
            let params = cfg.target.params.clone().into_iter().collect();
            let t = py
                .detach(|| build_target(registry(), &cfg.target.name, &params))
                .map_err(|e| bootflow_err(format!("building the target: {}", chain(&e))))?;
            (t, None)
        }
    };
    if let Some(dir) = &out
        && holds_run(dir)
    {
        return Err(PyFileExistsError::new_err(format!("{} already holds a run; choose another out", dir.display())));
    }
    let fail = |e: bootflow_core::Error| match &parked {
        Some(p) => to_py(e, &[p]),
        None => bootflow_err(chain(&e)),
    };
    let mut trainer = Trainer::from_config(registry(), boxed, &cfg).map_err(fail)?;
    if let Some(dir) = &out {
        let mut recorded = cfg.clone();
        pin_script(&mut recorded.target).map_err(fail)?;
        write_config(dir, &recorded).map_err(fail)?;
        trainer = trainer.write_to(dir).map_err(fail)?;
    }
    let logged = Arc::new(Mutex::new(Logged::default()));
    trainer.observe(Box::new(Recorder(logged.clone())));
    let watch = PyProgress::new(progress);
    trainer.observe(Box::new(TrainingObserver(watch.clone())));
    trainer.stop_when_set(watch.stop.clone());
    py.detach(|| trainer.run()).map_err(fail)?;
    let snapshot = trainer.snapshot();
    let summary = TrainSummary { flow_init: trainer.init_note().map(str::to_string), ..TrainSummary::of(&snapshot) };
    if let Some(dir) = &out {
        write_summary(dir, &summary).map_err(fail)?;
    }
    let interrupted = watch.interrupted();
    drop(watch.take_interrupt());
    let logged = logged.lock().map_err(|_| bootflow_err("a training observer panicked"))?;
    let summary_json = json!({
        "steps": summary.steps,
        "skipped_steps": summary.skipped_steps,
        "seconds": summary.seconds,
        "n_params": summary.n_params,
        "flow_init": summary.flow_init,
        "final_loss": logged.metrics.iter().find(|(k, _)| *k == "loss")
            .and_then(|(_, v)| v.iter().rev().find_map(|x| *x)),
        "interrupted": interrupted,
    });
    let flow = Flow::from_checkpoint(snapshot, out.clone())?;
    Ok((
        flow,
        Logged::to_json(&logged.metrics).to_string(),
        Logged::to_json(&logged.evals).to_string(),
        summary_json.to_string(),
        interrupted,
    ))
}
