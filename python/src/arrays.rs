//! Batches between numpy and bootflow. A bootflow batch is `dim x n`, column-major: the same
//! memory as a C-ordered `(n, dim)` array, so every conversion is one copy at most and results
//! made in Rust are handed to numpy without copying.

use bootflow_core::Batch;
use numpy::{PyArray1, PyArrayMethods, PyReadonlyArrayDyn, PyUntypedArrayMethods};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

/// `values` as a numpy array of `shape` (no copy).
pub fn to_numpy<'py>(py: Python<'py>, values: Vec<f64>, shape: &[usize]) -> PyResult<Bound<'py, PyAny>> {
    Ok(PyArray1::from_vec(py, values).reshape(shape)?.into_any())
}

/// A batch as a `(n, dim)` array.
pub fn batch_to_numpy<'py>(py: Python<'py>, b: Batch) -> PyResult<Bound<'py, PyAny>> {
    let (d, n) = b.shape();
    to_numpy(py, b.data.into(), &[n, d])
}

/// Reads a float64 array of exactly `shape` into `out` (any memory layout); `what` names the
/// array in the error.
pub fn read_f64(obj: &Bound<'_, PyAny>, shape: &[usize], out: &mut [f64], what: &str) -> PyResult<()> {
    let arr: PyReadonlyArrayDyn<'_, f64> = obj.extract().map_err(|_| {
        let got = describe(obj);
        PyValueError::new_err(format!("{what} must be a float64 numpy array of shape {}, got {got}", shape_text(shape)))
    })?;
    if arr.shape() != shape {
        return Err(PyValueError::new_err(format!(
            "{what} must have shape {}, got shape {}",
            shape_text(shape),
            shape_text(arr.shape())
        )));
    }
    match arr.as_slice() {
        Ok(s) => out.copy_from_slice(s),
        Err(_) => out.iter_mut().zip(arr.as_array().iter()).for_each(|(o, v)| *o = *v),
    }
    Ok(())
}

/// A shape as Python writes it: `(4,)`, `(256, 2)`.
pub fn shape_text(shape: &[usize]) -> String {
    match shape {
        [n] => format!("({n},)"),
        _ => format!("({})", shape.iter().map(usize::to_string).collect::<Vec<_>>().join(", ")),
    }
}

/// The type (and for arrays dtype and shape) of a value, for error messages.
fn describe(obj: &Bound<'_, PyAny>) -> String {
    let ty = obj.get_type().name().map(|n| n.to_string()).unwrap_or_else(|_| "?".into());
    match (obj.getattr("dtype"), obj.getattr("shape")) {
        (Ok(dt), Ok(sh)) => format!("{ty} of dtype {dt} and shape {sh}"),
        _ => ty,
    }
}

/// A `(n, dim)` array (or one point of `dim`) as a batch; `dim` is checked.
pub fn batch_from_numpy(obj: &Bound<'_, PyAny>, dim: usize) -> PyResult<Batch> {
    let arr: PyReadonlyArrayDyn<'_, f64> = obj.extract().map_err(|_| {
        PyValueError::new_err(format!(
            "points must be a float64 numpy array of shape (n, {dim}), got {}",
            describe(obj)
        ))
    })?;
    let n = match arr.shape() {
        [n, d] if *d == dim => *n,
        [d] if *d == dim => 1,
        s => {
            return Err(PyValueError::new_err(format!(
                "points must have shape (n, {dim}), got shape {}",
                shape_text(s)
            )));
        }
    };
    let mut b = Batch::zeros(dim, n);
    match arr.as_slice() {
        Ok(s) => b.as_mut_slice().copy_from_slice(s),
        Err(_) => b.as_mut_slice().iter_mut().zip(arr.as_array().iter()).for_each(|(o, v)| *o = *v),
    }
    Ok(b)
}
