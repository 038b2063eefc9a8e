//! `bootflow`: train normalizing flows, run MCMC chains and estimate, from the command line.
//!
//! Every failure prints one line `error: ...` on stderr and exits with status 2.

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
enum Command {}

fn run(cli: Cli) -> anyhow::Result<()> {
    let _ = &cli.plugin_dir;
    match cli.command {}
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
