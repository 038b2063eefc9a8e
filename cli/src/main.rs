//! `bootflow`: train normalizing flows, run MCMC chains and estimate, from the command line.
//!
//! Every failure prints one line `error: ...` on stderr and exits with status 2.
#![forbid(unsafe_code)]
// Doc comments of the argument structs are clap's help text: `[target]` names a config table and
// `<config file stem>` a placeholder, literally (not links or HTML).
#![allow(rustdoc::broken_intra_doc_links, rustdoc::invalid_html_tags)]

mod cmd_completions;
mod cmd_density;
mod cmd_estimate;
mod cmd_gradvar;
mod cmd_new_plugin;
mod cmd_optimize;
mod cmd_plugins;
mod cmd_reproduce;
mod cmd_run;
mod cmd_sample;
mod cmd_targets;
mod cmd_train;
// Figures and the report are drawn by the run and plot commands.
#[allow(dead_code, unused_imports)]
mod plot;
mod plugins;
mod progress;
mod run_plots;
mod target_arg;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

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

    /// Memory a command may plan to use, e.g. `8G` or `512M` (default: half of physical
    /// memory). Sizes past it (batch, network widths, buffer, chains x draws, samples) are
    /// refused before anything is allocated, naming the key or flag.
    #[arg(long, global = true, value_name = "SIZE", value_parser = bootflow_core::run::budget::parse_size)]
    max_memory: Option<u64>,

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
    /// Evaluate a trained flow: ESS, log Z and the target's test figures.
    ///
    /// Kish ESS of the flow and of flow + AIS on fresh samples, log Z with its error, forward ESS
    /// and mean log q on exact target samples, test-set mean log q and test-function bias where
    /// the target defines them; writes estimate.json next to the checkpoint.
    ///
    /// Example: `bootflow estimate --flow runs/gmm5-fab/checkpoint.json --samples 100000 --json`
    Estimate(cmd_estimate::EstimateArgs),
    /// Run MCMC chains on a target (hmc, nuts, rwm), with a trained flow as proposal (mis,
    /// mis-ais), from the target's exact sampler (exact), or from its Laplace approximation
    /// (laplace: a Gaussian at the best mode `bootflow optimize` finds).
    ///
    /// Writes one CmdStan-style CSV per chain (`chain_1.csv`, ...; rows written as they are drawn)
    /// and `summary.json` (mean, sd, MCSE, ESS, R-hat, tau_int of every coordinate and observable;
    /// importance ESS and log Z for mis / mis-ais / laplace). Kernel options go in `--kernel-set`.
    ///
    /// Example: `bootflow sample --target phi4 --set L=8 --method hmc --chains 64 --draws 1000 --out runs/phi4-hmc`
    Sample(cmd_sample::SampleArgs),
    /// Measure each gradient estimator's variance at fixed flow parameters.
    ///
    /// At a checkpoint's parameters (or a config's initial flow), each estimator's gradient on
    /// --batches fresh batches of the training batch size: the mean over parameters of the
    /// per-component variance (eq. 45 of the gradient-estimator paper) and its square root, with
    /// F_q and the spread of the signal log q - log p on fresh samples.
    ///
    /// Example: `bootflow gradvar runs/phi4 --checkpoint runs/phi4/checkpoint.json --estimators g1,g2,g3,path,fast-path --batches 1000`
    Gradvar(cmd_gradvar::GradVarArgs),
    /// Find the modes of a target's log-density (MAP) by L-BFGS from several random starts.
    ///
    /// Starts that end at the same point are one mode; each mode is printed with its log-density,
    /// the gradient norm there and how many starts found it, best first (the target's gradient
    /// is needed). `bootflow sample --method laplace` draws from a Gaussian at the best one.
    ///
    /// Example: `bootflow optimize --target gmm5 --starts 32 --init-scale 20`
    Optimize(cmd_optimize::OptimizeArgs),
    /// Train, evaluate, sample with MIS and report, from one run config (TOML).
    ///
    /// The config is the train config plus optional `[evaluate]` (samples, ais) and `[sample]`
    /// (method = "mis" | "mis-ais", chains, draws, ais_steps) tables. The output directory receives
    /// the config, metrics, checkpoint, chains, figures (PNG and SVG), report.md and summary.json.
    ///
    /// Example: `bootflow run scripts/gmm5-fab.toml --out runs/gmm5 --set sample.chains=8`
    Run(cmd_run::RunArgs),
    /// Run the shipped reproductions and print our figures next to the published ones.
    ///
    /// Each entry (`--list` shows them: the FAB mixtures, Many Well 16 and 32, the funnel, phi^4
    /// L = 8) trains its config from scripts/ into OUT/NAME and estimates it; the comparison,
    /// with the published figures and their sources (docs/reproduce.toml), is printed and
    /// written to OUT/table.md. With --budget-minutes, entries that fit run in full, shortest
    /// first, and the rest share what is left and are marked as cut.
    ///
    /// Example: `bootflow reproduce gmm5 funnel --out runs/reproduce` or `bootflow reproduce --list --budget-minutes 10`
    Reproduce(cmd_reproduce::ReproduceArgs),
    /// Redraw the figures and report.md of a run directory from its files; for a `bootflow
    /// train` directory (finished or still training), its training curves and, where
    /// `train.gradvar_every` measured them, the gradient variances (gradvar.png).
    ///
    /// Example: `bootflow plot runs/gmm5`
    Plot {
        /// A directory written by `bootflow run` or `bootflow train`.
        run_dir: PathBuf,
    },
}

fn run(cli: Cli) -> anyhow::Result<()> {
    if let Some(bytes) = cli.max_memory {
        bootflow_core::run::budget::set_max_memory(bytes);
    }
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
        Command::Sample(args) => cmd_sample::run(args, &registry),
        Command::Gradvar(args) => cmd_gradvar::run(args, &registry),
        Command::Optimize(args) => cmd_optimize::run(args, &registry),
        Command::Run(args) => cmd_run::run(args, &registry),
        Command::Reproduce(args) => cmd_reproduce::run(args, &registry),
        Command::Plot { run_dir } => cmd_run::plot(run_dir, &registry),
    }
}

#[cfg(test)]
mod cli_tests;

/// Command-line errors as one line too (help and version requests print as clap prints them).
fn parse_args() -> Result<Cli, ExitCode> {
    // `--chains -1` is a bad value for --chains (named in the error), not an unknown flag `-1`.
    let command = Cli::command().mut_subcommands(|s| s.allow_negative_numbers(true));
    let parsed = command.try_get_matches().and_then(|m| Cli::from_arg_matches(&m));
    parsed.map_err(|e| {
        if e.exit_code() == 0 || e.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
            e.exit();
        }
        let text = e.render().to_string();
        let line: Vec<&str> =
            text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with("Usage:")).collect();
        eprintln!("{}", line.join("; "));
        ExitCode::from(2)
    })
}

/// A run stopped by SIGINT or SIGTERM after saving its work; the text says where. Exit status 130.
#[derive(Debug)]
pub struct Interrupted(pub String);

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Interrupted {}

/// The first SIGINT or SIGTERM sets the interrupt flag (the run saves and stops); a second one
/// ends the process at once with status 130.
fn catch_signals() -> std::io::Result<()> {
    let flag = progress::interrupt_flag();
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register_conditional_shutdown(sig, 130, flag.clone())?;
        signal_hook::flag::register(sig, flag.clone())?;
    }
    Ok(())
}

fn main() -> ExitCode {
    bootflow_core::keep_freed_memory();
    if let Err(e) = catch_signals() {
        eprintln!("error: installing the signal handlers: {e}");
        return ExitCode::from(2);
    }
    let cli = match parse_args() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.downcast_ref::<Interrupted>().is_some() => {
            eprintln!("{e}");
            ExitCode::from(130)
        }
        Err(e) => {
            // One line: the chain of contexts joined by ": ".
            let msg = format!("{e:#}").replace('\n', " ");
            eprintln!("error: {msg}");
            ExitCode::from(2)
        }
    }
}
