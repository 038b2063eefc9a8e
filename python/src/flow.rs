//! Trained flows: sampling, densities, and the checkpoint files the CLI reads and writes.

use std::path::{Path, PathBuf};

use bootflow_core::run::CONFIG_FILE;
use bootflow_core::{CHECKPOINT_FILE, Checkpoint, Flow as CoreFlow, rng};
use pyo3::prelude::*;

use crate::arrays::{batch_from_numpy, batch_to_numpy, to_numpy};
use crate::errors::{bootflow_err, chain};
use crate::registry::registry;

/// A normalizing flow with the checkpoint it belongs to.
#[pyclass(module = "bootflow._native", frozen)]
pub struct Flow {
    pub(crate) flow: CoreFlow,
    pub(crate) checkpoint: Checkpoint,
    /// The run directory it was read from (whose `config.toml` names its target), if any.
    pub(crate) run_dir: Option<PathBuf>,
}

impl Flow {
    /// Rebuilds the flow of a checkpoint.
    pub fn from_checkpoint(checkpoint: Checkpoint, run_dir: Option<PathBuf>) -> PyResult<Self> {
        let c = &checkpoint;
        let mut flow = registry().flow(c.flow.dim, &c.flow.spec, c.flow.seed).map_err(|e| bootflow_err(chain(&e)))?;
        flow.set_params(&c.params).map_err(|e| bootflow_err(chain(&e)))?;
        Ok(Self { flow, checkpoint, run_dir })
    }
}

#[pymethods]
impl Flow {
    /// Dimension of the flow's space.
    #[getter]
    fn dim(&self) -> usize {
        self.flow.dim()
    }

    /// Number of trainable parameters.
    #[getter]
    fn n_params(&self) -> usize {
        self.flow.n_params()
    }

    /// The parameters, in the flow's own order (as in `checkpoint.json`).
    #[getter]
    fn params<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let p = self.flow.params();
        let n = p.len();
        to_numpy(py, p, &[n])
    }

    /// Training steps behind these parameters.
    #[getter]
    fn step(&self) -> u64 {
        self.checkpoint.step
    }

    /// The run directory the flow was read from, if any.
    #[getter]
    fn run_dir(&self) -> Option<PathBuf> {
        self.run_dir.clone()
    }

    /// `n` draws and their log-densities: `(x (n, dim), log_q (n,))`, from `seed`.
    #[pyo3(signature = (n, seed = 0))]
    fn sample<'py>(&self, py: Python<'py>, n: usize, seed: u64) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
        let flow = &self.flow;
        let (x, log_q) =
            py.detach(|| flow.sample_with_log_q(n, &mut rng::stream(seed, 0))).map_err(|e| bootflow_err(chain(&e)))?;
        Ok((batch_to_numpy(py, x)?, to_numpy(py, log_q, &[n])?))
    }

    /// The flow's log-density at each row of `x` (shape `(n, dim)`).
    fn log_q<'py>(&self, py: Python<'py>, x: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let b = batch_from_numpy(x, self.flow.dim())?;
        let n = b.ncols();
        let flow = &self.flow;
        let out = py.detach(|| flow.log_q(&b)).map_err(|e| bootflow_err(chain(&e)))?;
        to_numpy(py, out, &[n])
    }

    /// Writes the checkpoint: `path` ending in `.json` is the file, anything else a directory
    /// (created) that receives `checkpoint.json`. `bootflow sample --flow` and `estimate` read it.
    fn save(&self, path: PathBuf) -> PyResult<PathBuf> {
        let (dir, file) = if path.extension().is_some_and(|e| e == "json") {
            let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_path_buf();
            (dir, path.clone())
        } else {
            (path.clone(), path.join(CHECKPOINT_FILE))
        };
        std::fs::create_dir_all(&dir).map_err(|e| bootflow_err(format!("creating {}: {e}", dir.display())))?;
        let mut c = self.checkpoint.clone();
        c.params = self.flow.params();
        let text = serde_json::to_vec(&c).map_err(|e| bootflow_err(e.to_string()))?;
        // Written beside and renamed, so the file is either the old one or the new one.
        let tmp = file.with_extension("json.tmp");
        std::fs::write(&tmp, text)
            .and_then(|_| std::fs::rename(&tmp, &file))
            .map_err(|e| bootflow_err(format!("writing {}: {e}", file.display())))?;
        Ok(file)
    }

    fn __repr__(&self) -> String {
        format!(
            "bootflow.Flow(dim={}, n_params={}, step={})",
            self.flow.dim(),
            self.flow.n_params(),
            self.checkpoint.step
        )
    }
}

/// Reads a flow from a checkpoint file or a run directory holding `checkpoint.json`.
#[pyfunction]
pub fn load_flow(path: PathBuf) -> PyResult<Flow> {
    let file = if path.is_dir() { path.join(CHECKPOINT_FILE) } else { path.clone() };
    let text = std::fs::read(&file).map_err(|e| bootflow_err(format!("reading {}: {e}", file.display())))?;
    let c: Checkpoint = serde_json::from_slice(&text)
        .map_err(|e| bootflow_err(format!("{} is not a bootflow checkpoint: {e}", file.display())))?;
    let dir = file.parent().map(Path::to_path_buf).filter(|d| d.join(CONFIG_FILE).exists());
    Flow::from_checkpoint(c, dir)
}
