//! `bootflow.sample` (kernel chains or MIS with a flow, the draws as arrays) and
//! `bootflow.estimate` (a flow's ESS, log Z and test figures, as `bootflow estimate` computes them).

use std::path::{Path, PathBuf};

use bootflow_core::Error;
use bootflow_core::run::{CONFIG_FILE, RunSpec, build_target};
use bootflow_core::run::{EstimateRequest, Method, SampleRequest, Sizes, evaluate_checkpoint, sample_with};
use pyo3::exceptions::{PyFileExistsError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use serde_json::Value;

use crate::arrays::to_numpy;
use crate::errors::{bootflow_err, chain, parse_json, to_py};
use crate::flow::Flow;
use crate::progress::PyProgress;
use crate::registry::registry;
use crate::target::Target;

/// The draws of a sampling run as arrays: `x` `(chains, draws, dim)`, each observable
/// `(chains, draws)`, `lp` and the acceptance statistic `(chains, draws)`.
type DrawArrays<'py> =
    (String, Bound<'py, PyAny>, Vec<(String, Bound<'py, PyAny>)>, Bound<'py, PyAny>, Bound<'py, PyAny>);

fn method(name: &str) -> PyResult<Method> {
    Ok(match name {
        "hmc" => Method::Hmc,
        "nuts" => Method::Nuts,
        "rwm" => Method::Rwm,
        "mis" => Method::Mis,
        "mis-ais" => Method::MisAis,
        "exact" => Method::Exact,
        "laplace" => Method::Laplace,
        "flow-mcmc" => Method::FlowMcmc,
        other => {
            return Err(PyValueError::new_err(format!(
                "method '{other}': expected 'hmc', 'nuts', 'rwm', 'mis', 'mis-ais', 'exact', 'laplace' or 'flow-mcmc'"
            )));
        }
    })
}

/// Runs chains on `target` and returns the summary (JSON) and the draws; with `out`, writes the
/// chain files and `summary.json` there as `bootflow sample` does.
#[pyfunction]
#[pyo3(signature = (target, method_name, flow, chains, draws, warmup, seed, init_scale, kernel_options, ais_steps, out = None, progress = None))]
#[allow(clippy::too_many_arguments)]
pub fn sample<'py>(
    py: Python<'py>,
    target: &Target,
    method_name: &str,
    flow: Option<&Flow>,
    chains: usize,
    draws: usize,
    warmup: usize,
    seed: u64,
    init_scale: f64,
    kernel_options: &str,
    ais_steps: usize,
    out: Option<PathBuf>,
    progress: Option<Py<PyAny>>,
) -> PyResult<DrawArrays<'py>> {
    let Value::Object(options) = parse_json("kernel options", kernel_options)? else {
        return Err(PyTypeError::new_err("kernel options must be keyword arguments"));
    };
    // Chains are never written beside another run's (or anyone's) files.
    if let Some(dir) = &out
        && std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_some())
    {
        return Err(PyFileExistsError::new_err(format!("{} already holds files; choose another out", dir.display())));
    }
    let name = target.spec.get("name").and_then(Value::as_str).unwrap_or("python-callable").to_string();
    let target_sets = match &target.spec {
        Value::Object(m) => m.iter().filter(|(k, _)| *k != "name").map(|(k, v)| format!("{k}={v}")).collect(),
        _ => Vec::new(),
    };
    let req = SampleRequest {
        target: name,
        target_sets,
        method: method(method_name)?,
        flow: flow.and_then(|f| f.run_dir.clone()),
        kernel_sets: options.iter().map(|(k, v)| format!("{k}={v}")).collect(),
        ais_kernel: None,
        ais_steps,
        sizes: Sizes { chains, draws, warmup, seed, init_scale },
    };
    let watch = PyProgress::new(progress);
    let inner = target.inner.as_ref();
    let core_flow = flow.map(|f| &f.flow);
    let result = py.detach(|| sample_with(&req, inner, core_flow, out.as_deref(), registry(), watch.as_ref()));
    if let Some(interrupt) = watch.take_interrupt() {
        return Err(interrupt);
    }
    let sampled = result.map_err(|e| target.error(e))?;
    let d = sampled.draws;
    let (n_chains, n_draws) = (d.chains.len(), d.chains.first().map_or(0, |c| c.lp.len()));
    let mut x = Vec::with_capacity(n_chains * n_draws * d.dim);
    for c in &d.chains {
        for row in &c.rows {
            x.extend_from_slice(&row[..d.dim]);
        }
    }
    let observables = (d.dim..d.names.len())
        .map(|k| {
            let v: Vec<f64> = d.chains.iter().flat_map(|c| c.rows.iter().map(move |r| r[k])).collect();
            Ok((d.names[k].clone(), to_numpy(py, v, &[n_chains, n_draws])?))
        })
        .collect::<PyResult<Vec<_>>>()?;
    let lp: Vec<f64> = d.chains.iter().flat_map(|c| c.lp.iter().copied()).collect();
    let acc: Vec<f64> = d.chains.iter().flat_map(|c| c.accept_stat.iter().copied()).collect();
    let summary = serde_json::to_string(&sampled.summary).map_err(|e| bootflow_err(e.to_string()))?;
    Ok((
        summary,
        to_numpy(py, x, &[n_chains, n_draws, d.dim])?,
        observables,
        to_numpy(py, lp, &[n_chains, n_draws])?,
        to_numpy(py, acc, &[n_chains, n_draws])?,
    ))
}

/// The target a flow was trained on, rebuilt from its run directory's `config.toml`.
fn run_target(dir: &Path) -> PyResult<Target> {
    let cfg = RunSpec::from_file(&dir.join(CONFIG_FILE), &[]).map_err(|e| bootflow_err(chain(&e)))?.train;
    let params = cfg.target.params.clone().into_iter().collect();
    let inner = build_target(registry(), &cfg.target.name, &params)
        .map_err(|e| bootflow_err(format!("rebuilding the target of {}: {}", dir.display(), chain(&e))))?;
    Ok(Target { inner: inner.into(), spec: Value::Null, parked: Default::default() })
}

/// The figures of `bootflow estimate` for `flow` on `target` (default: the target its run
/// directory names), as JSON.
#[pyfunction]
#[pyo3(signature = (flow, target = None, samples = 100_000, seed = 0, ais_steps = None))]
pub fn estimate(
    py: Python<'_>,
    flow: &Flow,
    target: Option<&Target>,
    samples: usize,
    seed: u64,
    ais_steps: Option<usize>,
) -> PyResult<String> {
    if samples < 2 {
        return Err(PyValueError::new_err("samples must be at least 2"));
    }
    let rebuilt;
    let target = match (target, &flow.run_dir) {
        (Some(t), _) => t,
        (None, Some(dir)) => {
            rebuilt = run_target(dir)?;
            &rebuilt
        }
        (None, None) => {
            return Err(PyTypeError::new_err("estimate needs target=: this flow has no run directory naming one"));
        }
    };
    let req = EstimateRequest { flow: PathBuf::new(), samples, ais_steps, seed, log_z_batches: None };
    let (c, f, inner) = (&flow.checkpoint, &flow.flow, target.inner.as_ref());
    if f.dim() != inner.dim() {
        return Err(bootflow_err(format!("the flow has dimension {} but the target {}", f.dim(), inner.dim())));
    }
    let eval = py.detach(|| evaluate_checkpoint(c, f, inner, &req, registry())).map_err(|e| target.error(e))?;
    let mut v = serde_json::to_value(&eval).map_err(|e: serde_json::Error| to_py(Error::Other(e.to_string()), &[]))?;
    if let Value::Object(m) = &mut v {
        m.insert("step".into(), Value::from(c.step));
        m.insert("train_seconds".into(), Value::from(c.elapsed_seconds));
        m.insert("seed".into(), Value::from(seed));
    }
    Ok(v.to_string())
}
