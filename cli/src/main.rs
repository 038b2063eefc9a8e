//! `bootflow`: train normalizing flows, run MCMC chains and estimate, from the command line.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Sample hard distributions with normalizing flows and MCMC.
#[derive(Parser)]
#[command(name = "bootflow", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {}

fn main() -> ExitCode {
    let _cli = Cli::parse();
    ExitCode::SUCCESS
}
