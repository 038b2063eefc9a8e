//! Observers of the training loop: the loop owns iteration and calls them at logging steps and
//! checkpoints (metrics CSV, checkpoint files, progress bars live here or in the CLI).

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::train::checkpoint::Checkpoint;

/// What the loop reports at a logging step (the values of that step).
#[derive(Clone, Debug)]
pub struct Progress<'a> {
    pub step: u64,
    pub total_steps: u64,
    pub seconds: f64,
    /// `None` for a skipped step.
    pub loss: Option<f64>,
    /// Gradient norm before clipping; `None` for a skipped step.
    pub grad_norm: Option<f64>,
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
    /// Called with each checkpoint.
    fn on_checkpoint(&mut self, _checkpoint: &Checkpoint) -> Result<()> {
        Ok(())
    }
}

/// Header of `metrics.csv`.
pub const METRICS_HEADER: &str = "step,seconds,loss,ess,grad_norm,skipped_steps,ais_accept,step_size";

/// Appends one row per logging step to `metrics.csv` (empty cells where a value does not apply).
pub struct MetricsCsv {
    out: BufWriter<File>,
    path: PathBuf,
}

impl MetricsCsv {
    /// Opens `dir/metrics.csv` for appending, writing the header when the file is new or empty.
    pub fn open(dir: &Path) -> Result<Self> {
        let path = dir.join("metrics.csv");
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
        let empty = file.metadata().map(|m| m.len() == 0).unwrap_or(true);
        let mut me = Self { out: BufWriter::new(file), path };
        if empty {
            me.line(METRICS_HEADER)?;
        }
        Ok(me)
    }

    fn line(&mut self, text: &str) -> Result<()> {
        writeln!(self.out, "{text}")
            .and_then(|_| self.out.flush())
            .map_err(|e| Error::io(format!("writing {}", self.path.display()), e))
    }
}

fn cell(v: Option<f64>) -> String {
    v.map(|x| x.to_string()).unwrap_or_default()
}

impl Observer for MetricsCsv {
    fn on_log(&mut self, p: &Progress) -> Result<()> {
        let row = format!(
            "{},{},{},{},{},{},{},{}",
            p.step,
            p.seconds,
            cell(p.loss),
            cell(p.metric("ess")),
            cell(p.grad_norm),
            p.skipped_steps,
            cell(p.metric("ais_accept")),
            cell(p.metric("step_size"))
        );
        self.line(&row)
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
