//! Progress of a long run on stderr: one plain line per training log step and per stage of a
//! run; for counted work (draws) an `indicatif` bar on a terminal, and plain lines at every tenth
//! of the work when stderr is a file or a pipe (logs stay readable). Safe to advance from several
//! threads at once.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use bootflow_core::run::{Counter, Event, RunProgress};
use bootflow_core::{self, Observer};
use indicatif::{ProgressBar, ProgressStyle};

/// Set by the first SIGINT or SIGTERM (`main` registers it): runs stop cleanly at the next step
/// or draw.
pub fn interrupt_flag() -> Arc<AtomicBool> {
    static FLAG: OnceLock<Arc<AtomicBool>> = OnceLock::new();
    FLAG.get_or_init(|| Arc::new(AtomicBool::new(false))).clone()
}

/// Whether a signal asked the run to stop.
pub fn interrupted() -> bool {
    interrupt_flag().load(Ordering::Relaxed)
}

/// Prints each warning of a result on standard output, where the result itself goes.
pub fn print_warnings(warnings: &[String]) {
    for w in warnings {
        println!("warning: {w}");
    }
}

/// The warnings a `summary.json` recorded.
pub fn recorded_warnings(summary: &bootflow_core::Summary) -> Vec<String> {
    match summary.extra.get(bootflow_core::warnings::KEY) {
        Some(serde_json::Value::Array(list)) => list.iter().filter_map(|w| w.as_str().map(str::to_string)).collect(),
        _ => Vec::new(),
    }
}

/// The CLI's report of a run's progress on stderr.
pub struct Stderr;

impl RunProgress for Stderr {
    fn stop(&self) -> Option<Arc<AtomicBool>> {
        Some(interrupt_flag())
    }

    fn training(&self) -> Option<Box<dyn Observer>> {
        Some(Box::new(LogLines))
    }

    fn event(&self, event: Event<'_>) {
        match event {
            Event::Trained { steps, seconds } => eprintln!("trained {steps} steps in {seconds:.1}s; evaluating"),
            Event::Evaluated { eval } => eprintln!("flow ESS {:.4}; sampling", eval.ess),
            Event::FlowInit { note } => eprintln!("flow.init: {note}"),
            Event::Warmup { transitions, chains } => eprintln!("warm-up: {transitions} transitions of {chains} chains"),
        }
    }

    fn counter(&self, what: &str, total: u64) -> Box<dyn Counter + '_> {
        Box::new(Progress::new(what, total))
    }
}

/// One plain line per logging step on stderr.
struct LogLines;

impl Observer for LogLines {
    fn on_log(&mut self, p: &bootflow_core::TrainingProgress) -> bootflow_core::Result<()> {
        let show = |v: Option<f64>| v.map(|x| format!("{x:.5}")).unwrap_or_else(|| "-".into());
        eprintln!(
            "step {}/{} {:.1}s loss {} ess {} grad_norm {} skipped {}",
            p.step,
            p.total_steps,
            p.seconds,
            show(p.loss),
            show(p.metric("ess")),
            show(p.grad_norm),
            p.skipped_steps
        );
        Ok(())
    }
}

/// Counts units of work towards a known total.
struct Progress {
    what: String,
    total: u64,
    done: AtomicU64,
    started: Instant,
    bar: Option<ProgressBar>,
}

impl Progress {
    /// A progress report of `total` units of `what` (e.g. "draws").
    fn new(what: &str, total: u64) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(total);
            let style = ProgressStyle::with_template("{elapsed_precise} [{bar:40}] {pos}/{len} {msg} (eta {eta})")
                .map(|s| s.progress_chars("=> "))
                .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            bar.set_message(what.to_string());
            bar
        });
        Self { what: what.to_string(), total, done: AtomicU64::new(0), started: Instant::now(), bar }
    }
}

impl Counter for Progress {
    /// Records `n` more units.
    fn advance(&self, n: u64) {
        let before = self.done.fetch_add(n, Ordering::Relaxed);
        let after = before + n;
        match &self.bar {
            Some(bar) => bar.inc(n),
            None => {
                // A line each time the count crosses a tenth of the total (at most one per call).
                let tenth = |k: u64| k.saturating_mul(10).checked_div(self.total).unwrap_or(10);
                if tenth(after) > tenth(before) {
                    eprintln!(
                        "{}/{} {} ({}%) {:.1}s",
                        after.min(self.total),
                        self.total,
                        self.what,
                        tenth(after).min(10) * 10,
                        self.started.elapsed().as_secs_f64()
                    );
                }
            }
        }
    }

    /// Ends the bar (a no-op for plain lines).
    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
