//! `bootflow sample`: MCMC chains on a target with a kernel (`hmc`, `rwm`), or Metropolized
//! independent sampling with a trained flow (`mis`, `mis-ais`), into `chain_*.csv` and
//! `summary.json`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use bootflow_core::ais::Spacing;
use bootflow_core::train::checkpoint::{CHECKPOINT_FILE, Checkpoint, FORMAT};
use bootflow_core::{Flow, Registry, Target};
use clap::ValueEnum;
use serde_json::{Value, json};

use crate::sampler::{self, AisRefinement, Plan};
use crate::sets::parse_set;
use crate::target_arg::TargetArgs;

/// How chains move.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Method {
    /// Hamiltonian Monte Carlo (needs the target's gradient).
    Hmc,
    /// Random-walk Metropolis.
    Rwm,
    /// Independent Metropolis–Hastings with the flow of `--flow` as proposal.
    Mis,
    /// As `mis`, each proposal refined by annealed importance sampling from the flow to the target.
    MisAis,
}

impl Method {
    pub fn name(self) -> &'static str {
        match self {
            Method::Hmc => "hmc",
            Method::Rwm => "rwm",
            Method::Mis => "mis",
            Method::MisAis => "mis-ais",
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
    /// Warm-up transitions (step-size adaptation) before the kept draws of hmc / rwm.
    #[arg(long, default_value_t = 500)]
    pub warmup: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Standard deviation of the random start points of hmc / rwm chains.
    #[arg(long, default_value_t = 1.0)]
    pub init_scale: f64,
    /// Trained flow for mis / mis-ais: a `checkpoint.json` written by `bootflow train` (or its run directory).
    #[arg(long, value_name = "CHECKPOINT")]
    pub flow: Option<PathBuf>,
    /// A kernel option, e.g. `--kernel-set step_size=0.05` or `--kernel-set n_leapfrog=20`; may be repeated.
    #[arg(long = "kernel-set", value_name = "KEY=VALUE")]
    pub kernel_set: Vec<String>,
    /// Kernel of the annealing steps of mis-ais (default hmc when the target has a gradient, else rwm).
    #[arg(long)]
    pub ais_kernel: Option<String>,
    /// Intermediate distributions of mis-ais.
    #[arg(long, default_value_t = 8)]
    pub ais_steps: usize,
    /// Output directory.
    #[arg(long, short)]
    pub out: PathBuf,
}

/// Defaults of `hmc` when used here: 10 leapfrog steps of 0.1 jittered by +-40 % per trajectory,
/// the step tuned during warm-up by dual averaging towards acceptance 0.8.
fn default_kernel_config(kernel: &str) -> Value {
    match kernel {
        "hmc" => json!({"n_leapfrog": 10, "step_size": 0.1, "jitter": 0.4, "target_accept": 0.8}),
        _ => json!({}),
    }
}

/// The kernel's defaults with the `--kernel-set` options on top.
pub(crate) fn kernel_config(kernel: &str, sets: &[String]) -> Result<Value> {
    let mut cfg = default_kernel_config(kernel);
    let map = cfg.as_object_mut().context("kernel defaults are a table")?;
    for s in sets {
        let (k, v) = parse_set(s).map_err(|e| anyhow::anyhow!("{}", e.to_string().replace("--set", "--kernel-set")))?;
        map.insert(k, v);
    }
    Ok(cfg)
}

/// Reads a flow checkpoint (`checkpoint.json`, or a run directory holding one) and rebuilds the flow.
pub fn load_flow(registry: &Registry, path: &Path) -> Result<Flow> {
    let file = if path.is_dir() { path.join(CHECKPOINT_FILE) } else { path.to_path_buf() };
    let text = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
    let c: Checkpoint =
        serde_json::from_slice(&text).with_context(|| format!("{} is not a bootflow checkpoint", file.display()))?;
    if c.format != FORMAT {
        bail!("checkpoint {} has format {}, this build reads {FORMAT}", file.display(), c.format);
    }
    let mut flow = registry.flow(c.flow.dim, &c.flow.spec, c.flow.seed).context("rebuilding the flow")?;
    flow.set_params(&c.params).with_context(|| format!("parameters of {}", file.display()))?;
    Ok(flow)
}

/// Checks the sizes before anything is written.
fn check_sizes(args: &SampleArgs) -> Result<()> {
    if args.chains == 0 {
        bail!("--chains must be at least 1");
    }
    if args.draws == 0 {
        bail!("--draws must be at least 1");
    }
    if !(args.init_scale.is_finite() && args.init_scale >= 0.0) {
        bail!("--init-scale must be finite and >= 0, got {}", args.init_scale);
    }
    match (args.method, &args.flow) {
        (Method::Mis | Method::MisAis, None) => bail!("--method {} needs --flow CHECKPOINT", args.method.name()),
        (Method::Hmc | Method::Rwm, Some(_)) => bail!("--flow is only used by --method mis / mis-ais"),
        _ => Ok(()),
    }
}

/// A kernel by name, refusing gradient kernels on targets without a gradient.
fn build_kernel(
    registry: &Registry,
    name: &str,
    target: &dyn Target,
    cfg: &Value,
) -> Result<Box<dyn bootflow_core::Kernel>> {
    let kernel = registry.kernel(name, target.dim(), cfg).with_context(|| format!("kernel '{name}'"))?;
    if kernel.needs_grad() && !target.has_grad() {
        bail!("kernel '{name}' needs the gradient of the target, which this target does not provide (use rwm)");
    }
    Ok(kernel)
}

/// Runs `bootflow sample` with the components in `registry`.
pub fn run(args: &SampleArgs, registry: &Registry) -> Result<()> {
    check_sizes(args)?;
    let target = args.target.build(registry)?;
    let params: BTreeMap<String, Value> = args.target.params()?;
    let kernel_name = match args.method {
        Method::Hmc | Method::Rwm => args.method.name().to_string(),
        Method::Mis => String::new(),
        Method::MisAis => {
            args.ais_kernel.clone().unwrap_or_else(|| if target.has_grad() { "hmc".into() } else { "rwm".into() })
        }
    };
    let kcfg = if kernel_name.is_empty() { json!({}) } else { kernel_config(&kernel_name, &args.kernel_set)? };
    let kernel = if kernel_name.is_empty() {
        if !args.kernel_set.is_empty() {
            bail!("--kernel-set has no effect with --method mis");
        }
        None
    } else {
        Some(build_kernel(registry, &kernel_name, target.as_ref(), &kcfg)?)
    };
    let flow = args.flow.as_deref().map(|p| load_flow(registry, p)).transpose()?;
    if let Some(f) = &flow
        && f.dim() != target.dim()
    {
        bail!("the flow has dimension {} but the target has dimension {}", f.dim(), target.dim());
    }
    let config = json!({
        "target": args.target.target,
        "target_params": params,
        "method": args.method.name(),
        "chains": args.chains,
        "draws": args.draws,
        "warmup": args.warmup,
        "seed": args.seed,
        "init_scale": args.init_scale,
        "flow": args.flow.as_ref().map(|p| p.display().to_string()),
        "kernel": if kernel_name.is_empty() { Value::Null } else { json!(kernel_name) },
        "kernel_config": kcfg,
        "ais_steps": (args.method == Method::MisAis).then_some(args.ais_steps),
    });
    let plan = Plan {
        method: args.method.name().to_string(),
        chains: args.chains,
        draws: args.draws,
        warmup: args.warmup,
        seed: args.seed,
        init_scale: args.init_scale,
        config,
    };
    std::fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    let summary = match (args.method, kernel, flow) {
        (Method::Hmc | Method::Rwm, Some(mut k), _) => {
            sampler::with_kernel(k.as_mut(), target.as_ref(), &plan, &args.out)?
        }
        (Method::Mis, _, Some(f)) => sampler::with_flow(&f, target.as_ref(), None, &plan, &args.out)?,
        (Method::MisAis, Some(k), Some(f)) => {
            let ais = AisRefinement { kernel: k.as_ref(), n_intermediate: args.ais_steps, spacing: Spacing::Linear };
            sampler::with_flow(&f, target.as_ref(), Some(&ais), &plan, &args.out)?
        }
        _ => unreachable!("check_sizes and the kernel choice cover every method"),
    };
    summary.write_atomic(&args.out.join("summary.json"))?;
    eprintln!(
        "{} chains x {} draws in {:.1}s, acceptance {}; wrote {}",
        summary.chains,
        summary.draws,
        summary.seconds,
        summary.acceptance.map(|a| format!("{a:.3}")).unwrap_or("-".into()),
        args.out.display()
    );
    Ok(())
}
