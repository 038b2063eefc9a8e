//! Targets from Python: a registered target by name, a Rhai script, or a vectorised Python
//! callable `log_prob(x: (n, d)) -> (n,)` with an optional `grad(x) -> (n, d)`, called once per
//! batch bootflow asks for (from whichever thread asks; each call takes the GIL).

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bootflow_core::run::build_target;
use bootflow_core::{Batch, Error, Rng, Target as CoreTarget, rng};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use serde_json::Value;

use numpy::{PyArray2, PyArrayMethods, PyUntypedArrayMethods};

use crate::arrays::{batch_from_numpy, batch_to_numpy, read_f64, to_numpy};
use crate::errors::{Parked, bootflow_err, chain, parse_json, to_py};
use crate::registry::registry;

/// A target of bootflow, as the Python package holds it.
#[pyclass(module = "bootflow._native", frozen)]
pub struct Target {
    pub(crate) inner: Arc<dyn CoreTarget>,
    /// The `[target]` table that rebuilds it (name and keys); `Null` for a Python callable.
    pub(crate) spec: Value,
    /// Where a Python callable's exceptions wait to be re-raised.
    pub(crate) parked: Arc<Parked>,
}

impl Target {
    /// The boxed target a trainer or sampler owns, sharing this one.
    pub fn boxed(&self) -> Box<dyn CoreTarget> {
        Box::new(Shared(self.inner.clone()))
    }

    /// A bootflow error of a call on this target, or the exception its callable raised.
    pub fn error(&self, err: Error) -> PyErr {
        to_py(err, &[&self.parked])
    }
}

#[pymethods]
impl Target {
    /// Dimension of the target's space.
    #[getter]
    fn dim(&self) -> usize {
        self.inner.dim()
    }

    /// Whether the target provides its gradient.
    #[getter]
    fn has_grad(&self) -> bool {
        self.inner.has_grad()
    }

    /// Whether the target has an exact sampler (`sample`).
    #[getter]
    fn has_sampler(&self) -> bool {
        self.inner.has_sampler()
    }

    /// The log normalising constant, when known.
    #[getter]
    fn log_z(&self) -> Option<f64> {
        self.inner.log_z()
    }

    /// Names of the target's observables (recorded with every draw).
    #[getter]
    fn observable_names(&self) -> Vec<String> {
        self.inner.observable_names()
    }

    /// The `[target]` table that rebuilds the target, as JSON (`null` for a Python callable).
    #[getter]
    fn spec_json(&self) -> String {
        self.spec.to_string()
    }

    /// Unnormalised log-density at each row of `x` (shape `(n, dim)`).
    fn log_prob<'py>(&self, py: Python<'py>, x: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let b = batch_from_numpy(x, self.inner.dim())?;
        let n = b.ncols();
        let inner = &self.inner;
        let out = py
            .detach(|| {
                let mut out = vec![0.0; n];
                inner.log_prob_batch(&b, &mut out).map(|_| out)
            })
            .map_err(|e| self.error(e))?;
        to_numpy(py, out, &[n])
    }

    /// Log-density and its gradient at each row of `x`: `(values (n,), grad (n, dim))`.
    fn log_prob_grad<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
        if !self.inner.has_grad() {
            return Err(bootflow_err("this target does not provide its gradient"));
        }
        let b = batch_from_numpy(x, self.inner.dim())?;
        let n = b.ncols();
        let inner = &self.inner;
        let (out, grad) = py
            .detach(|| {
                let mut out = vec![0.0; n];
                let mut grad = Batch::zeros(b.nrows(), n);
                inner.log_prob_grad_batch(&b, &mut out, &mut grad).map(|_| (out, grad))
            })
            .map_err(|e| self.error(e))?;
        Ok((to_numpy(py, out, &[n])?, batch_to_numpy(py, grad)?))
    }

    /// Mean seconds per evaluation of the target on the batch `x` (shape `(n, dim)`) as bootflow
    /// makes it during training and sampling (value, and gradient when `grad`), over `repeats`
    /// calls: the cost of a Python target with the package's own work included.
    #[pyo3(signature = (x, repeats = 100, grad = true))]
    fn time_eval(&self, py: Python<'_>, x: &Bound<'_, PyAny>, repeats: usize, grad: bool) -> PyResult<f64> {
        if grad && !self.inner.has_grad() {
            return Err(bootflow_err("this target does not provide its gradient"));
        }
        let b = batch_from_numpy(x, self.inner.dim())?;
        let inner = &self.inner;
        let seconds = py
            .detach(|| {
                let mut out = vec![0.0; b.ncols()];
                let mut g = Batch::zeros(b.nrows(), b.ncols());
                let start = std::time::Instant::now();
                for _ in 0..repeats.max(1) {
                    if grad {
                        inner.log_prob_grad_batch(&b, &mut out, &mut g)?;
                    } else {
                        inner.log_prob_batch(&b, &mut out)?;
                    }
                }
                Ok(start.elapsed().as_secs_f64() / repeats.max(1) as f64)
            })
            .map_err(|e| self.error(e))?;
        Ok(seconds)
    }

    /// `n` exact draws from the target's own sampler (targets with `has_sampler`), `(n, dim)`.
    #[pyo3(signature = (n, seed = 0))]
    fn sample<'py>(&self, py: Python<'py>, n: usize, seed: u64) -> PyResult<Bound<'py, PyAny>> {
        if !self.inner.has_sampler() {
            return Err(bootflow_err("this target has no exact sampler"));
        }
        let inner = &self.inner;
        let b = py.detach(|| inner.sample(n, &mut rng::stream(seed, 0))).map_err(|e| self.error(e))?;
        batch_to_numpy(py, b)
    }

    fn __repr__(&self) -> String {
        let what = if self.spec.is_null() { "python callable".to_string() } else { self.spec.to_string() };
        format!("bootflow.Target({what}, dim={})", self.inner.dim())
    }
}

/// Builds a target: a registered name or `.rhai` path with its keys (JSON object `params`), or
/// a Python callable of dimension `dim` (with `grad` for its gradient).
#[pyfunction]
#[pyo3(signature = (spec, params, dim = None, grad = None))]
pub fn target(
    py: Python<'_>,
    spec: &Bound<'_, PyAny>,
    params: &str,
    dim: Option<usize>,
    grad: Option<Py<PyAny>>,
) -> PyResult<Target> {
    let params = match parse_json("target keys", params)? {
        Value::Object(m) => m,
        _ => return Err(PyTypeError::new_err("target keys must be a dict")),
    };
    if spec.is_callable() {
        let dim = dim.ok_or_else(|| PyTypeError::new_err("a Python log_prob target needs dim="))?;
        if dim == 0 {
            return Err(PyValueError::new_err("dim must be at least 1"));
        }
        if !params.is_empty() {
            let keys: Vec<&String> = params.keys().collect();
            return Err(PyTypeError::new_err(format!("a Python log_prob target takes no keys, got {keys:?}")));
        }
        if let Some(g) = &grad
            && !g.bind(py).is_callable()
        {
            return Err(PyTypeError::new_err("grad must be a callable grad(x) -> (n, dim) array"));
        }
        let parked = Arc::new(Parked::default());
        let inner = Callable {
            dim,
            log_prob: spec.clone().unbind(),
            grad,
            parked: parked.clone(),
            calls: 0.into(),
            scratch: Mutex::new(None),
        };
        return Ok(Target { inner: Arc::new(inner), spec: Value::Null, parked });
    }
    if grad.is_some() {
        return Err(PyTypeError::new_err("grad= is only for a Python log_prob callable"));
    }
    let name: String = match spec.extract::<String>() {
        Ok(s) => s,
        Err(_) => spec
            .call_method0("__fspath__")
            .and_then(|p| p.extract())
            .map_err(|_| PyTypeError::new_err("a target is a name, a .rhai path or a callable"))?,
    };
    let mut params = params;
    if let Some(d) = dim {
        params.insert("dim".into(), Value::from(d));
    }
    // A script is recorded by its absolute path, so a run directory rebuilds it from anywhere.
    let name = if bootflow_core::run::target::is_script(&name) {
        std::path::absolute(Path::new(&name)).map(|p| p.display().to_string()).unwrap_or(name)
    } else {
        name
    };
    let keys = params.clone().into_iter().collect();
    let inner = py.detach(|| build_target(registry(), &name, &keys)).map_err(|e| bootflow_err(chain(&e)))?;
    let mut spec = params;
    spec.insert("name".into(), Value::from(name));
    Ok(Target { inner: Arc::from(inner), spec: Value::Object(spec), parked: Arc::new(Parked::default()) })
}

/// Every registered target: `(name, description)`.
#[pyfunction]
pub fn list_targets() -> Vec<(String, String)> {
    registry().targets.iter().map(|(k, e)| (k.clone(), e.description.clone())).collect()
}

/// A shared target handed to a trainer or sampler that wants to own one.
struct Shared(Arc<dyn CoreTarget>);

impl CoreTarget for Shared {
    fn dim(&self) -> usize {
        self.0.dim()
    }
    fn log_prob(&self, x: &[f64]) -> bootflow_core::Result<f64> {
        self.0.log_prob(x)
    }
    fn has_grad(&self) -> bool {
        self.0.has_grad()
    }
    fn log_prob_grad(&self, x: &[f64], grad: &mut [f64]) -> bootflow_core::Result<f64> {
        self.0.log_prob_grad(x, grad)
    }
    fn log_prob_batch(&self, x: &Batch, out: &mut [f64]) -> bootflow_core::Result<()> {
        self.0.log_prob_batch(x, out)
    }
    fn log_prob_grad_batch(&self, x: &Batch, out: &mut [f64], grad: &mut Batch) -> bootflow_core::Result<()> {
        self.0.log_prob_grad_batch(x, out, grad)
    }
    fn has_sampler(&self) -> bool {
        self.0.has_sampler()
    }
    fn sample(&self, n: usize, rng: &mut Rng) -> bootflow_core::Result<Batch> {
        self.0.sample(n, rng)
    }
    fn log_z(&self) -> Option<f64> {
        self.0.log_z()
    }
    fn observable_names(&self) -> Vec<String> {
        self.0.observable_names()
    }
    fn observables(&self, x: &[f64], out: &mut [f64]) -> bootflow_core::Result<()> {
        self.0.observables(x, out)
    }
    fn known_means(&self) -> Vec<(String, f64)> {
        self.0.known_means()
    }
    fn test_set(&self) -> Option<Batch> {
        self.0.test_set()
    }
}

/// A target written as vectorised Python functions.
struct Callable {
    dim: usize,
    log_prob: Py<PyAny>,
    grad: Option<Py<PyAny>>,
    parked: Arc<Parked>,
    /// Batches handed to Python so far (named in errors).
    calls: AtomicU64,
    /// The array last handed to Python as `x`, refilled for the next batch of the same size when
    /// nothing kept a reference to it (saves an allocation per call and keeps it in cache).
    scratch: Mutex<Option<Py<PyArray2<f64>>>>,
}

impl Callable {
    /// Calls `log_prob` (and `grad`) on `x`, writing into `out` (and `grad_out`). An exception is
    /// parked with a note naming the batch, and bootflow sees an error saying the same.
    fn call(&self, x: &Batch, out: &mut [f64], grad_out: Option<&mut Batch>) -> bootflow_core::Result<()> {
        let n = x.ncols();
        let batch = self.calls.fetch_add(1, Ordering::Relaxed) + 1;
        Python::attach(|py| {
            let result = (|| -> PyResult<()> {
                let arr = self.input(py, x)?;
                {
                    let values = self.log_prob.bind(py).call1((&arr,))?;
                    read_f64(&values, &[n], out, "log_prob(x)")?;
                }
                if let (Some(g), Some(grad_out)) = (&self.grad, grad_out) {
                    let grads = g.bind(py).call1((&arr,))?;
                    read_f64(&grads, &[n, self.dim], grad_out.as_mut_slice(), "grad(x)")?;
                }
                // SAFETY: `arr` is a live object; reading its count has no other effect.
                let only_ours = unsafe { pyo3::ffi::Py_REFCNT(arr.as_ptr()) } == 1;
                if only_ours && let Ok(mut slot) = self.scratch.lock() {
                    *slot = Some(arr.unbind());
                }
                Ok(())
            })();
            result.map_err(|e| {
                let what = format!("{}: {}", e.get_type(py), e.value(py));
                let points = if n == 1 { "1 point".to_string() } else { format!("{n} points") };
                let note = format!("raised by the Python target on batch {batch} ({points} of dimension {})", self.dim);
                let _ = e.add_note(py, note.clone());
                self.parked.park(e);
                Error::Other(format!("{what} ({note})"))
            })
        })
    }
}

impl Callable {
    /// `x` as a `(n, dim)` array: the scratch array when it has that shape, else a new one.
    fn input<'py>(&self, py: Python<'py>, x: &Batch) -> PyResult<Bound<'py, PyArray2<f64>>> {
        let (d, n) = x.shape();
        let kept = self.scratch.lock().ok().and_then(|mut s| s.take()).map(|a| a.into_bound(py));
        let arr = match kept {
            Some(a) if a.shape() == [n, d] => a,
            _ => PyArray2::zeros(py, [n, d], false),
        };
        let mut view = arr.try_readwrite()?;
        view.as_slice_mut()?.copy_from_slice(x.as_slice());
        drop(view);
        Ok(arr)
    }
}

impl CoreTarget for Callable {
    fn dim(&self) -> usize {
        self.dim
    }
    fn log_prob(&self, x: &[f64]) -> bootflow_core::Result<f64> {
        let mut out = [0.0];
        self.call(&Batch::from_column_slice(self.dim, 1, x), &mut out, None)?;
        Ok(out[0])
    }
    fn has_grad(&self) -> bool {
        self.grad.is_some()
    }
    fn log_prob_grad(&self, x: &[f64], grad: &mut [f64]) -> bootflow_core::Result<f64> {
        let mut out = [0.0];
        let mut g = Batch::zeros(self.dim, 1);
        self.call(&Batch::from_column_slice(self.dim, 1, x), &mut out, Some(&mut g))?;
        grad.copy_from_slice(g.as_slice());
        Ok(out[0])
    }
    fn log_prob_batch(&self, x: &Batch, out: &mut [f64]) -> bootflow_core::Result<()> {
        self.call(x, out, None)
    }
    fn log_prob_grad_batch(&self, x: &Batch, out: &mut [f64], grad: &mut Batch) -> bootflow_core::Result<()> {
        self.call(x, out, Some(grad))
    }
}
