//! `bootflow sample`: MCMC chains on a target with a kernel (`hmc`, `nuts`, `rwm`), or Metropolized
//! independent sampling with a trained flow (`mis`, `mis-ais`), or exact draws from the target's
//! own sampler (`exact`), into `chain_*.csv` and
//! `summary.json`.

use std::path::PathBuf;

use anyhow::Result;
use bootflow_core::run::outdir::prepare;
use bootflow_core::run::sample::Sizes;
use bootflow_core::run::{self, SampleRequest};
use bootflow_core::{Error, Registry};
use clap::ValueEnum;

use crate::Interrupted;
use crate::progress::Stderr;
use crate::target_arg::TargetArgs;

/// How chains move.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Method {
    /// Hamiltonian Monte Carlo (needs the target's gradient); `--kernel-set adapt_mass=true`
    /// adapts the mass matrix in warm-up as nuts does.
    Hmc,
    /// The no-U-turn sampler: multinomial, generalised no-U-turn criterion, max tree depth,
    /// divergences; warm-up adapts the step size and a diagonal mass matrix, or a dense one with
    /// `--kernel-set metric=dense` (needs the gradient).
    Nuts,
    /// Random-walk Metropolis.
    Rwm,
    /// Independent Metropolis–Hastings with the flow of `--flow` as proposal.
    Mis,
    /// As `mis`, each proposal refined by annealed importance sampling from the flow to the target.
    MisAis,
    /// Independent draws from the target's exact sampler (for targets that have one).
    Exact,
    /// Independent draws from the Laplace approximation (a Gaussian at the best mode L-BFGS
    /// finds, covariance from the Hessian), with importance weights against the target (needs
    /// the gradient).
    Laplace,
    /// Local moves (nuts where the target has a gradient, else rwm; `--kernel-set` configures
    /// them) alternating with independent-Metropolis moves from a flow trained during warm-up on
    /// the chains' own positions, frozen for the kept draws.
    FlowMcmc,
}

impl From<Method> for run::Method {
    fn from(m: Method) -> Self {
        match m {
            Method::Hmc => run::Method::Hmc,
            Method::Nuts => run::Method::Nuts,
            Method::Rwm => run::Method::Rwm,
            Method::Mis => run::Method::Mis,
            Method::MisAis => run::Method::MisAis,
            Method::Exact => run::Method::Exact,
            Method::Laplace => run::Method::Laplace,
            Method::FlowMcmc => run::Method::FlowMcmc,
        }
    }
}

/// Arguments of `bootflow sample`.
#[derive(clap::Args)]
pub struct SampleArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Sampling method.
    #[arg(long, value_enum)]
    pub method: Method,
    /// Number of chains.
    #[arg(long, default_value_t = 4)]
    pub chains: usize,
    /// Kept draws per chain.
    #[arg(long, default_value_t = 1000)]
    pub draws: usize,
    /// Warm-up transitions (step-size and, for nuts, mass-matrix adaptation) before the kept draws of hmc / nuts / rwm.
    #[arg(long, default_value_t = 500)]
    pub warmup: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Standard deviation of the random start points of hmc / nuts / rwm chains.
    #[arg(long, default_value_t = 1.0)]
    pub init_scale: f64,
    /// Trained flow for mis / mis-ais: a `checkpoint.json` written by `bootflow train` (or its run directory).
    #[arg(long, value_name = "CHECKPOINT")]
    pub flow: Option<PathBuf>,
    /// A kernel option, e.g. `--kernel-set step_size=0.05` or `--kernel-set n_leapfrog=20`; may be repeated.
    #[arg(long = "kernel-set", value_name = "KEY=VALUE")]
    pub kernel_set: Vec<String>,
    /// Kernel of the annealing steps of mis-ais: hmc, nuts, rwm or a plugin kernel (default hmc when
    /// the target has a gradient, else rwm).
    #[arg(long)]
    pub ais_kernel: Option<String>,
    /// Intermediate distributions of mis-ais.
    #[arg(long, default_value_t = 8)]
    pub ais_steps: usize,
    /// Output directory; must be new or empty unless --force.
    #[arg(long, short)]
    pub out: PathBuf,
    /// Empty a used output directory first (only if everything in it was written by bootflow).
    #[arg(long)]
    pub force: bool,
}

/// Runs `bootflow sample` with the components in `registry`.
pub fn run(args: &SampleArgs, registry: &Registry) -> Result<()> {
    let req = SampleRequest {
        target: args.target.target.clone(),
        target_sets: args.target.set.clone(),
        method: args.method.into(),
        flow: args.flow.clone(),
        kernel_sets: args.kernel_set.clone(),
        ais_kernel: args.ais_kernel.clone(),
        ais_steps: args.ais_steps,
        sizes: Sizes {
            chains: args.chains,
            draws: args.draws,
            warmup: args.warmup,
            seed: args.seed,
            init_scale: args.init_scale,
        },
    };
    prepare(&args.out, args.force, "--out")?;
    let summary = match run::sample(&req, &args.out, registry, &Stderr) {
        Err(Error::Interrupted) => {
            let msg = format!("interrupted before the first draw; nothing kept in {}", args.out.display());
            return Err(Interrupted(msg).into());
        }
        other => other?,
    };
    if summary.extra.get("interrupted").is_some_and(|v| v == true) {
        return Err(Interrupted(format!(
            "interrupted after {} draws per chain: chains and summary.json in {}",
            summary.draws,
            args.out.display()
        ))
        .into());
    }
    eprintln!(
        "{} chains x {} draws in {:.1}s, acceptance {}; wrote {}",
        summary.chains,
        summary.draws,
        summary.seconds,
        summary.acceptance.map(|a| format!("{a:.3}")).unwrap_or("-".into()),
        args.out.display()
    );
    crate::progress::print_warnings(&crate::progress::recorded_warnings(&summary));
    Ok(())
}
