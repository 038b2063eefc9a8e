//! Observers of the training loop: the loop owns iteration and calls them at logging steps and
//! checkpoints (metrics CSV, checkpoint files, progress bars live here or in the CLI).

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::diagnostics::eval::FlowEval;
use crate::error::{Error, Result};
use crate::run::gradvar::GradVarPoint;
use crate::train::checkpoint::Checkpoint;

/// What the loop reports at a logging step (the values of that step).
#[derive(Clone, Debug)]
pub struct Progress<'a> {
    /// Steps taken so far, this one included.
    pub step: u64,
    /// Steps the run is set to take (`train.steps`).
    pub total_steps: u64,
    /// Training wall-clock seconds so far (evaluations excluded).
    pub seconds: f64,
    /// `None` for a skipped step.
    pub loss: Option<f64>,
    /// Gradient norm before clipping; `None` for a skipped step.
    pub grad_norm: Option<f64>,
    /// Steps skipped so far for a non-finite loss or gradient.
    pub skipped_steps: u64,
    /// The objective's diagnostics (`ess`, `ais_accept`, `step_size`, ...).
    pub metrics: &'a [(String, f64)],
}

impl Progress<'_> {
    /// The named diagnostic, if the objective reported it.
    pub fn metric(&self, name: &str) -> Option<f64> {
        self.metrics.iter().find(|(n, _)| n == name).map(|(_, v)| *v)
    }
}

/// Something that watches a training run.
pub trait Observer: Send {
    /// Called every `log_every` steps.
    fn on_log(&mut self, progress: &Progress) -> Result<()>;
    /// Called after every step, with the steps taken so far (where a front end checks for an
    /// interrupt).
    fn on_step(&mut self, _step: u64) -> Result<()> {
        Ok(())
    }
    /// Called with each checkpoint.
    fn on_checkpoint(&mut self, _checkpoint: &Checkpoint) -> Result<()> {
        Ok(())
    }
    /// Called with each periodic evaluation (`train.eval_every`), at `step` after `seconds` of
    /// training time.
    fn on_eval(&mut self, _step: u64, _seconds: f64, _eval: &FlowEval) -> Result<()> {
        Ok(())
    }
    /// Called with each gradient-variance measurement (`train.gradvar_every`), at `step` after
    /// `seconds` of training time.
    fn on_gradvar(&mut self, _step: u64, _seconds: f64, _point: &GradVarPoint) -> Result<()> {
        Ok(())
    }
}

/// Header of `metrics.csv`.
pub const METRICS_HEADER: &str = "step,seconds,loss,ess,grad_norm,skipped_steps,ais_accept,step_size,test_mean_log_q";

/// Header of `eval.csv`.
pub const EVAL_HEADER: &str = "step,seconds,flow_ess,forward_ess,mean_log_q_target_samples,test_mean_log_q,mis_accept";

/// Header of `gradvar.csv`: one row per estimator and measurement.
pub const GRADVAR_HEADER: &str = "step,seconds,estimator,variance,sd,mean_grad_norm,f_q,signal_sd";

/// A CSV file of a run directory, appended to line by line (each line flushed).
struct CsvLog {
    out: BufWriter<File>,
    path: PathBuf,
}

impl CsvLog {
    /// Opens `dir/name` for appending, writing the header when the file is new or empty.
    fn open(dir: &Path, name: &str, header: &str) -> Result<Self> {
        let path = dir.join(name);
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
        let empty = file.metadata().map(|m| m.len() == 0).unwrap_or(true);
        let mut me = Self { out: BufWriter::new(file), path };
        if empty {
            me.line(header)?;
        }
        Ok(me)
    }

    fn line(&mut self, text: &str) -> Result<()> {
        writeln!(self.out, "{text}")
            .and_then(|_| self.out.flush())
            .map_err(|e| Error::io(format!("writing {}", self.path.display()), e))
    }
}

/// Appends one row per logging step to `metrics.csv` (empty cells where a value does not apply).
pub struct MetricsCsv(CsvLog);

impl MetricsCsv {
    pub fn open(dir: &Path) -> Result<Self> {
        CsvLog::open(dir, "metrics.csv", METRICS_HEADER).map(Self)
    }
}

/// Drops the rows of the CSV log `path` (`metrics.csv`, `eval.csv`) logged after `step`: a run
/// killed after its last checkpoint logged them, and resuming logs them again. Rewritten beside
/// and renamed, so a crash leaves either the old or the new file; a missing file is fine.
pub fn truncate_log_after(path: &Path, step: u64) -> Result<()> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(format!("reading {}", path.display()), e)),
    };
    let mut lines = text.lines();
    let mut kept = String::with_capacity(text.len());
    if let Some(header) = lines.next() {
        kept.push_str(header);
        kept.push('\n');
    }
    // A row's first field is its step; a torn last line (no step) goes too.
    for line in lines.filter(|l| l.split(',').next().and_then(|f| f.parse::<u64>().ok()).is_some_and(|s| s <= step)) {
        kept.push_str(line);
        kept.push('\n');
    }
    if kept.len() == text.len() {
        return Ok(());
    }
    let tmp = path.with_extension("csv.tmp");
    std::fs::write(&tmp, kept).map_err(|e| Error::io(format!("writing {}", tmp.display()), e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(format!("renaming to {}", path.display()), e))
}

/// Appends one row per periodic evaluation to `eval.csv`.
pub struct EvalCsv(CsvLog);

impl EvalCsv {
    pub fn open(dir: &Path) -> Result<Self> {
        CsvLog::open(dir, "eval.csv", EVAL_HEADER).map(Self)
    }
}

impl Observer for EvalCsv {
    fn on_log(&mut self, _: &Progress) -> Result<()> {
        Ok(())
    }
    fn on_eval(&mut self, step: u64, seconds: f64, e: &FlowEval) -> Result<()> {
        let row = format!(
            "{step},{seconds},{},{},{},{},{}",
            e.ess,
            cell(e.forward_ess),
            cell(e.mean_log_q_target_samples),
            cell(e.test_mean_log_q),
            cell(e.mis_accept)
        );
        self.0.line(&row)
    }
}

/// Appends one row per estimator and measurement to `gradvar.csv`, created at the first one.
pub struct GradVarCsv {
    dir: PathBuf,
    log: Option<CsvLog>,
}

impl GradVarCsv {
    pub fn new(dir: &Path) -> Self {
        Self { dir: dir.to_path_buf(), log: None }
    }
}

impl Observer for GradVarCsv {
    fn on_log(&mut self, _: &Progress) -> Result<()> {
        Ok(())
    }
    fn on_gradvar(&mut self, step: u64, seconds: f64, g: &GradVarPoint) -> Result<()> {
        let log = match &mut self.log {
            Some(log) => log,
            None => self.log.insert(CsvLog::open(&self.dir, "gradvar.csv", GRADVAR_HEADER)?),
        };
        for e in &g.estimators {
            let row = format!(
                "{step},{seconds},{},{},{},{},{},{}",
                e.estimator, e.variance, e.sd, e.mean_norm, g.free_energy, g.signal_sd
            );
            log.line(&row)?;
        }
        Ok(())
    }
}

fn cell(v: Option<f64>) -> String {
    v.map(|x| x.to_string()).unwrap_or_default()
}

impl Observer for MetricsCsv {
    fn on_log(&mut self, p: &Progress) -> Result<()> {
        let row = format!(
            "{},{},{},{},{},{},{},{},{}",
            p.step,
            p.seconds,
            cell(p.loss),
            cell(p.metric("ess")),
            cell(p.grad_norm),
            p.skipped_steps,
            cell(p.metric("ais_accept")),
            cell(p.metric("step_size")),
            cell(p.metric("test_mean_log_q"))
        );
        self.0.line(&row)
    }
}

/// Writes every checkpoint into a run directory.
pub struct CheckpointWriter {
    dir: PathBuf,
}

impl CheckpointWriter {
    pub fn new(dir: &Path) -> Self {
        Self { dir: dir.to_path_buf() }
    }
}

impl Observer for CheckpointWriter {
    fn on_log(&mut self, _: &Progress) -> Result<()> {
        Ok(())
    }
    fn on_checkpoint(&mut self, c: &Checkpoint) -> Result<()> {
        c.write(&self.dir)
    }
}
