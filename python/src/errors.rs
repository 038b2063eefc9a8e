//! Errors: bootflow's errors become `bootflow.BootflowError` with the whole chain of causes in
//! one line; an exception raised inside a Python target is parked while bootflow unwinds and
//! re-raised, itself, at the call site.

use std::sync::{Arc, Mutex};

use pyo3::create_exception;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

create_exception!(
    bootflow,
    BootflowError,
    PyValueError,
    "An error reported by bootflow: a bad config or argument, or a failure while running."
);

/// The first exception a Python target raised during a call, waiting to be re-raised.
#[derive(Default)]
pub struct Parked(Mutex<Option<PyErr>>);

impl Parked {
    /// Keeps `err` unless an earlier one is already waiting (the first cause is the one to show).
    pub fn park(&self, err: PyErr) {
        if let Ok(mut slot) = self.0.lock()
            && slot.is_none()
        {
            *slot = Some(err);
        }
    }

    /// The parked exception, if any, leaving the slot empty.
    pub fn take(&self) -> Option<PyErr> {
        self.0.lock().ok().and_then(|mut s| s.take())
    }
}

/// The error of a call: an exception a Python target raised (from any of `parked`) if there is
/// one, else bootflow's error with its causes.
pub fn to_py(err: bootflow_core::Error, parked: &[&Arc<Parked>]) -> PyErr {
    if let Some(e) = parked.iter().find_map(|p| p.take()) {
        return e;
    }
    BootflowError::new_err(chain(&err))
}

/// An error and its causes in one line.
pub fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut msg = err.to_string();
    let mut cause = err.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !msg.contains(&text) {
            msg.push_str(": ");
            msg.push_str(&text);
        }
        cause = c.source();
    }
    msg
}

/// A `BootflowError` with `msg`.
pub fn bootflow_err(msg: impl Into<String>) -> PyErr {
    BootflowError::new_err(msg.into())
}

/// Parses JSON text handed over by the Python layer.
pub fn parse_json(what: &str, text: &str) -> PyResult<serde_json::Value> {
    serde_json::from_str(text).map_err(|e| bootflow_err(format!("{what}: {e}")))
}
