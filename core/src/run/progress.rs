//! How a run reports its progress to whoever drives it. Core prints nothing: the front end
//! (progress bars and log lines of the CLI, a Python callback, an MPI rank's logger) implements
//! [`RunProgress`] and decides what to show.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use crate::diagnostics::eval::FlowEval;
use crate::train::observer::Observer;

/// A point a run has reached.
#[derive(Clone, Copy, Debug)]
pub enum Event<'a> {
    /// Training ended after `steps` steps and `seconds` of training time.
    Trained {
        /// Optimiser steps taken.
        steps: u64,
        /// Training time in seconds.
        seconds: f64,
    },
    /// The trained flow was evaluated.
    Evaluated {
        /// The evaluation of the trained flow.
        eval: &'a FlowEval,
    },
    /// A fresh training run resolved `flow.init`: what it chose (see [`crate::initialise`]);
    /// reported when training has run.
    FlowInit {
        /// The choice and what it was fitted from.
        note: &'a str,
    },
    /// Kernel chains begin `transitions` warm-up transitions of `chains` chains.
    Warmup {
        /// Warm-up transitions each chain will make.
        transitions: usize,
        /// Number of chains.
        chains: usize,
    },
}

/// Receives a run's progress. Every method has a silent default.
pub trait RunProgress: Sync {
    /// An observer added to the training loop (after the run directory's own files).
    fn training(&self) -> Option<Box<dyn Observer>> {
        None
    }

    /// Called as the run reaches each [`Event`].
    fn event(&self, _event: Event<'_>) {}

    /// A flag the front end sets to stop the run (on Ctrl-C): training stops after the current
    /// step with a checkpoint, chains after the current draw with the summary of what was drawn.
    fn stop(&self) -> Option<Arc<AtomicBool>> {
        None
    }

    /// A count of `total` units of `what` (e.g. "draws"), advanced as they are done.
    fn counter(&self, _what: &str, _total: u64) -> Box<dyn Counter + '_> {
        Box::new(Quiet)
    }
}

/// Counts units of work towards a total; advanced from several threads at once.
pub trait Counter: Sync {
    /// Records `n` more units.
    fn advance(&self, n: u64);
    /// The work is done.
    fn finish(&self) {}
}

/// Reports nothing.
#[derive(Clone, Copy, Debug, Default)]
pub struct Quiet;

impl RunProgress for Quiet {}

impl Counter for Quiet {
    fn advance(&self, _n: u64) {}
}
