//! `bootflow gradvar CONFIG_OR_RUN_DIR`: each gradient estimator's variance at fixed flow
//! parameters (the gradient-estimator paper's eq. 45), with `F_q` and the signal's spread.

use std::path::PathBuf;

use anyhow::Result;
use bootflow_core::run::gradvar::{GradVar, GradVarRequest, gradvar};
use bootflow_core::{Error, Registry};

use crate::Interrupted;
use crate::progress::Stderr;

/// Arguments of `bootflow gradvar`.
#[derive(clap::Args)]
pub struct GradVarArgs {
    /// A train config (TOML) or a run directory (its `config.toml`): the target, flow and batch size.
    #[arg(value_name = "CONFIG_OR_RUN_DIR")]
    pub source: PathBuf,
    /// The parameters to measure at (default: the run directory's checkpoint; for a config, the
    /// flow as its seed initialises it).
    #[arg(long, value_name = "FILE")]
    pub checkpoint: Option<PathBuf>,
    /// Comma-separated estimators: g1, g2, g3, path, fast-path (reverse KL), ml, forward-path
    /// (forward KL, on exact target samples or the config's `samples`).
    #[arg(long, value_delimiter = ',', default_value = "g1,g2,g3,path,fast-path")]
    pub estimators: Vec<String>,
    /// Fresh batches (gradients) per estimator.
    #[arg(long, default_value_t = 1000)]
    pub batches: usize,
    /// Samples per gradient (default: the config objective's batch, else 256).
    #[arg(long)]
    pub batch: Option<usize>,
    /// Fresh flow samples for F_q and the signal's spread.
    #[arg(long, default_value_t = 100_000)]
    pub samples: usize,
    /// Seed of the random streams.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Runs `bootflow gradvar` with the components in `registry`.
pub fn run(args: &GradVarArgs, registry: &Registry) -> Result<()> {
    let req = GradVarRequest {
        source: args.source.clone(),
        checkpoint: args.checkpoint.clone(),
        estimators: args.estimators.iter().map(|e| e.trim().to_string()).collect(),
        batches: args.batches,
        batch: args.batch,
        samples: args.samples,
        seed: args.seed,
    };
    let g = match gradvar(&req, registry, &Stderr) {
        Err(Error::Interrupted) => return Err(Interrupted("interrupted; nothing measured".into()).into()),
        other => other?,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&g.to_json())?);
    } else {
        print!("{}", table(&g));
    }
    Ok(())
}

/// One row per estimator under a line naming the parameters and the signal's statistics.
fn table(g: &GradVar) -> String {
    let mut out = format!(
        "{} (flow after {} steps, {} parameters): F_q {:.4}, sd of the signal {:.4} ({} samples)\n",
        g.target, g.step, g.params, g.free_energy, g.signal_sd, g.samples
    );
    out += &format!("{} gradients of batch {} per estimator\n", g.batches, g.batch);
    out += &format!(
        "{:<13}{:>13}{:>13}{:>13}{:>11}\n",
        "estimator", "Var (eq. 45)", "sqrt(Var)", "|mean grad|", "ms/grad"
    );
    for r in &g.estimators {
        out += &format!(
            "{:<13}{:>13.4e}{:>13.4e}{:>13.4e}{:>11.2}\n",
            r.estimator,
            r.variance,
            r.sd,
            r.mean_norm,
            1e3 * r.seconds_per_gradient
        );
    }
    out
}
