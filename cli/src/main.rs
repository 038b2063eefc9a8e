//! `bootflow`: train normalizing flows, run MCMC chains and estimate, from the command line.
//!
//! Every failure prints one line `error: ...` on stderr and exits with status 2.

mod cmd_plugins;
mod cmd_train;
// Figures and the report are drawn by the run and plot commands.
#[allow(dead_code, unused_imports)]
mod plot;
mod plugins;
mod sets;
#[allow(dead_code)]
mod target_arg;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Sample hard distributions with normalizing flows and MCMC.
#[derive(Parser)]
#[command(name = "bootflow", version, about, long_about = None)]
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
    /// Example: `bootflow plugins --json --plugin-dir ./my-plugins`
    Plugins {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Train a flow from a run config (TOML).
    ///
    /// Example: `bootflow train scripts/gmm5-fab.toml --out runs/gmm5 --set train.steps=200`
    Train(cmd_train::TrainArgs),
}

fn run(cli: Cli) -> anyhow::Result<()> {
    if let Command::Plugins { json } = cli.command {
        return cmd_plugins::run(&cli.plugin_dir, json);
    }
    let (registry, _found) = plugins::registry(&cli.plugin_dir)?;
    match &cli.command {
        Command::Plugins { .. } => unreachable!("handled above"),
        Command::Train(args) => cmd_train::run(args, &registry),
    }
}

fn main() -> ExitCode {
    bootflow_core::memory::keep_freed_memory();
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
