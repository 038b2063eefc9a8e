//! `bootflow optimize --target T`: the modes of a target's log-density by L-BFGS from several
//! random starts, each with its log-density.

use anyhow::Result;
use bootflow_core::run::optimize::{Modes, OptimizeConfig, find_modes};
use bootflow_core::{Error, Registry};
use clap::Args;

use crate::Interrupted;
use crate::progress::Stderr;
use crate::target_arg::TargetArgs;

/// Coordinates printed per mode in the table (all of them go into `--json`).
const SHOWN_COORDS: usize = 6;

/// Arguments of `bootflow optimize`.
#[derive(Args)]
pub struct OptimizeArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Random starts, N(0, init-scale^2) per coordinate.
    #[arg(long, default_value_t = 16)]
    pub starts: usize,
    /// Standard deviation of the starts.
    #[arg(long, default_value_t = 1.0)]
    pub init_scale: f64,
    /// L-BFGS iterations per start.
    #[arg(long, default_value_t = 1000)]
    pub max_iters: u64,
    /// Seed of the starts.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Print JSON (every mode with all its coordinates) instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Runs `bootflow optimize`.
pub fn run(args: &OptimizeArgs, registry: &Registry) -> Result<()> {
    let target = args.target.build(registry)?;
    let cfg =
        OptimizeConfig { starts: args.starts, init_scale: args.init_scale, seed: args.seed, max_iters: args.max_iters };
    let found = match find_modes(target.as_ref(), &cfg, &Stderr) {
        Err(Error::Interrupted) => return Err(Interrupted("interrupted; no mode reported".into()).into()),
        other => other.map_err(|e| anyhow::anyhow!("target '{}': {e}", args.target.target))?,
    };
    if found.modes.is_empty() {
        let why = found.failed.first().map_or(String::new(), |f| format!(" (start {}: {})", f.start, f.why));
        anyhow::bail!("no start of {} reached a mode of '{}'{why}", found.starts, args.target.target);
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&found)?);
    } else {
        print!("{}", table(&found));
    }
    Ok(())
}

/// One row per mode, best first, then the failed starts.
fn table(m: &Modes) -> String {
    let mut out = format!("{} mode(s) from {} starts in {} dimensions, best first\n", m.modes.len(), m.starts, m.dim);
    out += &format!("{:<5}{:>16}{:>12}{:>8}  x\n", "mode", "log p~", "|grad|", "starts");
    for (k, mode) in m.modes.iter().enumerate() {
        let mut x: Vec<String> = mode.x.iter().take(SHOWN_COORDS).map(|v| format!("{v:.6}")).collect();
        if mode.x.len() > SHOWN_COORDS {
            x.push(format!("... ({} more)", mode.x.len() - SHOWN_COORDS));
        }
        out += &format!(
            "{:<5}{:>16.8}{:>12.2e}{:>8}  [{}]\n",
            k + 1,
            mode.log_p,
            mode.grad_norm,
            mode.starts.len(),
            x.join(", ")
        );
    }
    for f in &m.failed {
        out += &format!("start {} found no mode: {}\n", f.start, f.why);
    }
    out
}
