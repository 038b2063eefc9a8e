//! Checkpoints: everything needed to continue a run bit for bit, as one JSON file written
//! atomically (temporary file in the same directory, fsync, rename).
//!
//! Floats round-trip exactly: serde_json prints the shortest representation that parses back to
//! the same value and core enables its exact (`float_roundtrip`) parser.

use std::fs::{self, File};
use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::registry::FlowSpec;
use crate::rng::Rng;
use crate::train::config::{Component, TrainConfig};
use crate::train::optim::Adam;

/// File name of the checkpoint inside a run directory.
pub const CHECKPOINT_FILE: &str = "checkpoint.json";
/// Version of the checkpoint layout.
pub const FORMAT: u32 = 1;

/// How to rebuild the flow before loading its parameters.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FlowRecord {
    /// The flow's layer specification, as in the run config.
    pub spec: FlowSpec,
    /// The run seed: layer `k` is initialised from `seed + k`, training draws from its own stream.
    pub seed: u64,
    /// Dimension of the target (and the flow).
    pub dim: usize,
}

/// The state of a training run after `step` steps.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    /// Layout version; reading refuses anything but `FORMAT`.
    pub format: u32,
    /// How to rebuild the flow the parameters belong to.
    pub flow: FlowRecord,
    /// The flow's parameters, in the flow's own order.
    pub params: Vec<f64>,
    /// The objective's name and config keys.
    pub objective: Component,
    /// The objective's own state (e.g. FAB's tuned kernels and replay buffer), opaque JSON.
    pub objective_state: Value,
    /// The `[train]` keys of the run.
    pub train: TrainConfig,
    /// Adam's moments and step count.
    pub optimiser: Adam,
    /// The training random stream, positioned after `step` steps.
    pub rng: Rng,
    /// Steps taken, skipped ones included.
    pub step: u64,
    /// Steps skipped because the loss or gradient was not finite.
    pub skipped_steps: u64,
    /// Training wall-clock seconds so far (evaluations excluded).
    pub elapsed_seconds: f64,
}

impl Checkpoint {
    /// Writes `dir/checkpoint.json` so that a crash leaves either the old or the new file.
    pub fn write(&self, dir: &Path) -> Result<()> {
        let path = dir.join(CHECKPOINT_FILE);
        let tmp = dir.join(format!("{CHECKPOINT_FILE}.tmp"));
        let text = serde_json::to_vec(self).map_err(|e| Error::Bug(format!("serialising checkpoint: {e}")))?;
        let ctx = |what: &str| format!("{what} {}", tmp.display());
        let mut f = File::create(&tmp).map_err(|e| Error::io(ctx("creating"), e))?;
        f.write_all(&text).map_err(|e| Error::io(ctx("writing"), e))?;
        f.sync_all().map_err(|e| Error::io(ctx("syncing"), e))?;
        drop(f);
        fs::rename(&tmp, &path).map_err(|e| Error::io(format!("renaming to {}", path.display()), e))?;
        // The rename itself is durable once the directory is synced (not possible on every OS).
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }

    /// Reads `dir/checkpoint.json`.
    pub fn read(dir: &Path) -> Result<Self> {
        let path = dir.join(CHECKPOINT_FILE);
        let text = crate::run::input::read_bytes(&path, "checkpoint", crate::run::input::data_limit())?;
        let c: Self =
            serde_json::from_slice(&text).map_err(|e| Error::Config(format!("checkpoint {}: {e}", path.display())))?;
        if c.format != FORMAT {
            return Err(Error::Config(format!(
                "checkpoint {} has format {}, this build reads {FORMAT}",
                path.display(),
                c.format
            )));
        }
        Ok(c)
    }
}
