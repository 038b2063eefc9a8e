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
    pub spec: FlowSpec,
    /// The run seed: layer `k` is initialised from `seed + k`, training draws from its own stream.
    pub seed: u64,
    pub dim: usize,
}

/// The state of a training run after `step` steps.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    pub format: u32,
    pub flow: FlowRecord,
    pub params: Vec<f64>,
    pub objective: Component,
    pub objective_state: Value,
    pub train: TrainConfig,
    pub optimiser: Adam,
    pub rng: Rng,
    pub step: u64,
    pub skipped_steps: u64,
    pub elapsed_seconds: f64,
}

impl Checkpoint {
    /// Writes `dir/checkpoint.json` so that a crash leaves either the old or the new file.
    pub fn write(&self, dir: &Path) -> Result<()> {
        let path = dir.join(CHECKPOINT_FILE);
        let tmp = dir.join(format!("{CHECKPOINT_FILE}.tmp"));
        let text = serde_json::to_vec(self).map_err(|e| Error::Other(format!("serialising checkpoint: {e}")))?;
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
        let text = fs::read(&path).map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
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
