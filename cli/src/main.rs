//! `bootflow`: train normalizing flows, run MCMC chains and estimate, from the command line.
//!
//! Every failure prints one line `error: ...` on stderr and exits with status 2.

mod cmd_plugins;
mod plugins;
mod cmd_train;
// Figures and the report are drawn by the run and plot commands.
#[allow(dead_code, unused_imports)]
mod plot;
mod sets;

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
    Plugins {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Plugins { json } => cmd_plugins::run(&cli.plugin_dir, json),
    /// Train a flow from a run config (TOML).
    Train(cmd_train::TrainArgs),
    let _ = &cli.plugin_dir;
    let registry = bootflow_core::Registry::with_builtins();
    match &cli.command {
        Command::Train(args) => cmd_train::run(args, &registry),
    }
}

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
