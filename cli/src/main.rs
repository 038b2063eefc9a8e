//! `bootflow`: train normalizing flows, run MCMC chains and estimate, from the command line.
//!
//! Every failure prints one line `error: ...` on stderr and exits with status 2.

mod cmd_completions;
mod cmd_density;
mod cmd_estimate;
mod cmd_new_plugin;
mod cmd_plugins;
mod cmd_targets;
mod cmd_train;
// Figures and the report are drawn by the run and plot commands.
#[allow(dead_code, unused_imports)]
mod plot;
mod plugins;
mod sets;
mod target_arg;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

/// Sample hard distributions with normalizing flows and MCMC.
///
/// Components (targets, flow layers, MCMC kernels, objectives) are built in or come from plugin
/// libraries found on the plugin search path; `bootflow <COMMAND> --help` describes each command.
#[derive(Parser)]
#[command(
    name = "bootflow",
    version,
    about,
    after_help = "Example: `bootflow train scripts/gmm5-fab.toml --out runs/gmm5 --plugin-dir ./my-plugins`"
)]
struct Cli {
    /// Extra directory searched for plugin libraries (before BOOTFLOW_PLUGIN_PATH and the
    /// executable's directory); may be repeated.
    #[arg(long, global = true, value_name = "DIR")]
    plugin_dir: Vec<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List the plugins found on the search path, what each provides, and why any file was refused.
    ///
    /// The search path is every `--plugin-dir`, then the directories in `BOOTFLOW_PLUGIN_PATH`,
    /// then the executable's directory (only `libbootflow_*` files there). A refused file is
    /// reported with its reason and does not make the command fail.
    ///
    /// Example: `bootflow plugins --json --plugin-dir ./my-plugins`
    Plugins {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// List every target that can be named (built-in, plugin, script) with its capabilities.
    ///
    /// For each target: where it comes from, its dimension with default parameters, and whether
    /// it has a gradient, an exact sampler and a known log Z. Scripts are listed from `--scripts`
    /// (default: `scripts/` in the current directory).
    ///
    /// Example: `bootflow targets --json`
    Targets(cmd_targets::TargetsArgs),
    /// Evaluate a target's log-density (and gradient) at points read from a CSV file.
    ///
    /// Reads one point per row (`#` comments and a header row of names are skipped) and writes
    /// CSV `log_prob[,grad.1..grad.d]` on stdout. `-inf` (outside the support) is written as
    /// `-inf`; a NaN log-density is an error naming the point.
    ///
    /// Example: `bootflow density --target manywell --set dim=4 --points pts.csv --grad`
    Density(cmd_density::DensityArgs),
    /// Train a flow from a run config (TOML).
    ///
    /// The config names the seed, the target, the flow's layers, the objective (`kl`, `fab`,
    /// `forward-kl`) and the training schedule. The output directory receives the config that
    /// ran, `metrics.csv`, `checkpoint.json` and `summary.json`; `--resume` continues a run.
    ///
    /// Example: `bootflow train scripts/gmm5-fab.toml --out runs/gmm5 --set train.steps=200`
    Train(cmd_train::TrainArgs),
    /// Create a plugin crate `bootflow-NAME` with an example target, tests and a README.
    ///
    /// The crate builds on its own with `cargo build` into the library `libbootflow_NAME`, which
    /// bootflow loads from `--plugin-dir`, `BOOTFLOW_PLUGIN_PATH` or its own directory. It
    /// depends on the bootflow-core this binary was built from unless `--core-path` says otherwise.
    ///
    /// Example: `bootflow new-plugin banana --dir ../bootflow-banana && cd ../bootflow-banana && cargo build --release`
    NewPlugin(cmd_new_plugin::NewPluginArgs),
    /// Print a shell completion script for bootflow on stdout.
    ///
    /// Example: `bootflow completions bash > ~/.local/share/bash-completion/completions/bootflow`
    Completions {
        /// Shell to complete for.
        shell: clap_complete::Shell,
    },
    /// Evaluate a trained flow: ESS (flow and flow + AIS), log Z, forward ESS, test-set and
    /// test-function figures; writes estimate.json next to the checkpoint.
    /// Example: `bootflow estimate --flow runs/gmm5-fab/checkpoint.json --samples 100000 --json`
    Estimate(cmd_estimate::EstimateArgs),
}

fn run(cli: Cli) -> anyhow::Result<()> {
    // Commands that need no registry: they work whatever the plugin search path holds.
    if let Command::Plugins { json } = cli.command {
        return cmd_plugins::run(&cli.plugin_dir, json);
    }
    if let Command::NewPlugin(args) = &cli.command {
        return cmd_new_plugin::run(args);
    }
    if let Command::Completions { shell } = cli.command {
        return cmd_completions::run(shell, &mut Cli::command());
    }
    let (registry, _found) = plugins::registry(&cli.plugin_dir)?;
    match &cli.command {
        Command::Plugins { .. } | Command::NewPlugin(_) | Command::Completions { .. } => unreachable!("handled above"),
        Command::Targets(args) => cmd_targets::run(args, &registry),
        Command::Density(args) => cmd_density::run(args, &registry),
        Command::Train(args) => cmd_train::run(args, &registry),
        Command::Estimate(args) => cmd_estimate::run(args, &registry),
    }
}

#[cfg(test)]
mod cli_tests;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line: the chain of contexts joined by ": ".
            let msg = format!("{e:#}").replace('\n', " ");
            eprintln!("error: {msg}");
            ExitCode::from(2)
        }
    }
}
