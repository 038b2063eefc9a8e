//! The native module of the `bootflow` Python package (`bootflow._native`). The public API is
//! the Python package around it (`python/bootflow/__init__.py`); configs, parameters and results
//! cross as JSON text, batches as numpy arrays. Every call into bootflow releases the GIL; a
//! Python target takes it back for each batch it is asked for.

mod arrays;
mod errors;
mod flow;
mod progress;
mod registry;
mod sampling;
mod target;
mod training;

use pyo3::prelude::*;

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("BootflowError", m.py().get_type::<errors::BootflowError>())?;
    m.add_class::<target::Target>()?;
    m.add_class::<flow::Flow>()?;
    m.add_function(wrap_pyfunction!(target::target, m)?)?;
    m.add_function(wrap_pyfunction!(target::list_targets, m)?)?;
    m.add_function(wrap_pyfunction!(flow::load_flow, m)?)?;
    m.add_function(wrap_pyfunction!(training::train, m)?)?;
    m.add_function(wrap_pyfunction!(sampling::sample, m)?)?;
    m.add_function(wrap_pyfunction!(sampling::estimate, m)?)?;
    Ok(())
}
