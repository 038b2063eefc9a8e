//! Progress from bootflow to a Python callback `callback(kind, done, total, info)` (the package
//! draws bars with it), and Ctrl-C: the signal is seen on the main thread between steps, the run
//! is asked to stop, and the `KeyboardInterrupt` is kept to re-raise or report.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bootflow_core::run::{Counter, RunProgress};
use bootflow_core::{Observer, Result, TrainingProgress};
use pyo3::prelude::*;

/// Callbacks are made at most this often (and at the end).
const THROTTLE: Duration = Duration::from_millis(100);

/// A front end's progress callback and interrupt state, shared by the run's observers.
pub struct PyProgress {
    callback: Option<Py<PyAny>>,
    last: Mutex<Option<Instant>>,
    /// Set when Ctrl-C was seen: the trainer stops after the current step.
    pub stop: Arc<AtomicBool>,
    /// The `KeyboardInterrupt` (or other exception a signal handler raised).
    pub interrupt: Mutex<Option<PyErr>>,
}

impl PyProgress {
    /// Progress reported to `callback` (none: silent).
    pub fn new(callback: Option<Py<PyAny>>) -> Arc<Self> {
        Arc::new(Self {
            callback,
            last: Mutex::new(None),
            stop: Arc::new(AtomicBool::new(false)),
            interrupt: Mutex::new(None),
        })
    }

    /// Runs Python's signal handlers (main thread only; elsewhere Python does nothing); an
    /// exception from them stops the run.
    fn check_signals(&self, py: Python<'_>) {
        if let Err(e) = py.check_signals() {
            if let Ok(mut slot) = self.interrupt.lock() {
                slot.get_or_insert(e);
            }
            self.stop.store(true, Ordering::Relaxed);
        }
    }

    /// Whether a report is due: the callback exists and was not called in the last `THROTTLE`
    /// (`force`: always due). Checked before taking the GIL.
    fn due(&self, force: bool) -> bool {
        if self.callback.is_none() {
            return false;
        }
        let Ok(mut last) = self.last.lock() else { return false };
        let now = Instant::now();
        if !force && last.is_some_and(|t| now.duration_since(t) < THROTTLE) {
            return false;
        }
        *last = Some(now);
        true
    }

    /// Calls the callback with `(kind, done, total, info)`; its exceptions are shown, never fatal.
    fn report(&self, py: Python<'_>, kind: &str, done: u64, total: u64, info: Option<f64>) {
        if let Some(cb) = &self.callback
            && let Err(e) = cb.bind(py).call1((kind, done, total, info))
        {
            e.print(py);
        }
    }

    /// Whether the run was interrupted.
    pub fn interrupted(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// The exception that interrupted the run, if any.
    pub fn take_interrupt(&self) -> Option<PyErr> {
        self.interrupt.lock().ok().and_then(|mut s| s.take())
    }
}

/// The training loop's observer: a progress report at each logging step, an interrupt check
/// after every step.
pub struct TrainingObserver(pub Arc<PyProgress>);

impl Observer for TrainingObserver {
    fn on_log(&mut self, p: &TrainingProgress) -> Result<()> {
        if self.0.due(p.step >= p.total_steps) {
            Python::attach(|py| self.0.report(py, "train", p.step, p.total_steps, p.loss));
        }
        Ok(())
    }

    fn on_step(&mut self, _step: u64) -> Result<()> {
        Python::attach(|py| self.0.check_signals(py));
        Ok(())
    }
}

impl RunProgress for PyProgress {
    fn counter(&self, what: &str, total: u64) -> Box<dyn Counter + '_> {
        Box::new(Count { progress: self, what: what.to_string(), done: AtomicU64::new(0), total })
    }
}

/// A count of draws reported to the callback.
struct Count<'a> {
    progress: &'a PyProgress,
    what: String,
    done: AtomicU64,
    total: u64,
}

impl Counter for Count<'_> {
    fn advance(&self, n: u64) {
        let done = self.done.fetch_add(n, Ordering::Relaxed) + n;
        if self.progress.due(false) {
            Python::attach(|py| self.progress.report(py, &self.what, done, self.total, None));
        }
    }

    fn finish(&self) {
        let done = self.done.load(Ordering::Relaxed);
        if self.progress.due(true) {
            Python::attach(|py| self.progress.report(py, &self.what, done, self.total, None));
        }
    }
}
