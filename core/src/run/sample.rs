//! Runs the chains of `bootflow sample` (and of `bootflow run`) into an output directory: an MCMC
//! kernel on the target (`hmc`, `rwm`, or any registered kernel), Metropolized independent
//! sampling with a trained flow as proposal (`mis`, `mis-ais`), or independent draws from the
//! target's exact sampler (`exact`). Writes the chain files as it goes and returns the summary.
//! The `accept_stat__` column holds the kernel's acceptance probability, for MIS whether the draw
//! is a fresh proposal (1) or a repeat (0), and 1 for exact draws.

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::{Value, json};

use crate::diagnostics::warnings;
use crate::error::{Error, Result, ResultExt};
use crate::mcmc::ais::{Annealer, Spacing};
use crate::mcmc::chains::{ChainConfig, run_chains};
use crate::mcmc::mis::{MisConfig, Proposal, run_mis};
use crate::model::density::FlowDensity;
use crate::output::chain_sink::{ChainSink, Draws};
use crate::output::summary::{ImportanceSummary, Summary};
use crate::run::budget;
use crate::run::progress::{Event, RunProgress};
use crate::run::sets::parse_set;
use crate::run::spec::RunSpec;
use crate::run::target::{build_target, parse_params};
use crate::train::checkpoint::{CHECKPOINT_FILE, Checkpoint, FORMAT};
use crate::{Flow, Kernel, Registry, Target, TargetDensity, rng};

/// Proposals drawn at a time per MIS chain, and per batch of the importance estimate.
const PROPOSAL_BATCH: usize = 256;
/// Stream of the fresh proposals behind the importance estimate (chains use streams 0..N-1).
const IMPORTANCE_STREAM: u64 = u64::MAX;

/// Name of the summary file of a sampling run.
pub const SUMMARY_FILE: &str = "summary.json";

/// How chains move.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// Hamiltonian Monte Carlo (needs the target's gradient).
    Hmc,
    /// The no-U-turn sampler (needs the target's gradient).
    Nuts,
    /// Random-walk Metropolis.
    Rwm,
    /// Independent Metropolis–Hastings with a trained flow as proposal.
    Mis,
    /// As `mis`, each proposal refined by annealed importance sampling from the flow to the target.
    MisAis,
    /// Independent draws from the target's exact sampler (for targets that have one).
    Exact,
    /// Independent draws from the Laplace approximation at the best mode, weighted against the
    /// target (needs the gradient).
    Laplace,
    /// Local kernel moves alternating with independent-Metropolis moves from a flow trained
    /// during warm-up on the chains' positions ([`crate::run::flow_mcmc`]).
    FlowMcmc,
}

impl Method {
    /// The name used in configs, chain files and summaries.
    pub fn name(self) -> &'static str {
        match self {
            Method::Hmc => "hmc",
            Method::Nuts => "nuts",
            Method::Rwm => "rwm",
            Method::Mis => "mis",
            Method::MisAis => "mis-ais",
            Method::Exact => "exact",
            Method::Laplace => "laplace",
            Method::FlowMcmc => "flow-mcmc",
        }
    }
}

/// Everything `bootflow sample` is asked to do.
#[derive(Clone, Debug)]
pub struct SampleRequest {
    /// A target name or the path of a `.rhai` script.
    pub target: String,
    /// The target's `key=value` parameters.
    pub target_sets: Vec<String>,
    /// Sampling method.
    pub method: Method,
    /// Trained flow of mis / mis-ais: a checkpoint file or its run directory.
    pub flow: Option<PathBuf>,
    /// Kernel options as `key=value`, over the kernel's defaults.
    pub kernel_sets: Vec<String>,
    /// Kernel of the annealing steps of mis-ais (default hmc when the target has a gradient, else rwm).
    pub ais_kernel: Option<String>,
    /// Intermediate distributions of mis-ais.
    pub ais_steps: usize,
    /// Chains, draws and seed.
    pub sizes: Sizes,
}

/// How many chains and draws a sampling run makes, from which seed and start points.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sizes {
    /// Number of chains.
    pub chains: usize,
    /// Kept draws per chain.
    pub draws: usize,
    /// Warm-up transitions (step-size adaptation) before the kept draws of kernel chains.
    pub warmup: usize,
    /// Seed of the chains' random streams.
    pub seed: u64,
    /// Standard deviation of the random start points of kernel chains.
    pub init_scale: f64,
}

/// Sizes and seed of a sampling run, with the configuration recorded in every chain file.
pub struct Plan {
    /// Method name written into the chain files and the summary.
    pub method: String,
    /// Chains, draws and seed.
    pub sizes: Sizes,
    /// Everything the run was asked to do, as written into the chain files and the summary.
    pub config: Value,
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
pub fn kernel_config(kernel: &str, sets: &[String]) -> Result<Value> {
    let mut cfg = default_kernel_config(kernel);
    let map = cfg.as_object_mut().ok_or_else(|| Error::Other("kernel defaults are a table".into()))?;
    for s in sets {
        let (k, v) = parse_set(s).map_err(|e| Error::Other(e.to_string().replace("--set", "--kernel-set")))?;
        map.insert(k, v);
    }
    Ok(cfg)
}

/// Reads a flow checkpoint (`checkpoint.json`, or a run directory holding one) and rebuilds the flow.
pub fn load_flow(registry: &Registry, path: &Path) -> Result<Flow> {
    Ok(load_checkpoint(registry, path)?.1)
}

/// Reads a flow checkpoint (`checkpoint.json`, or a run directory holding one): the checkpoint
/// and its flow rebuilt with its parameters.
pub fn load_checkpoint(registry: &Registry, path: &Path) -> Result<(Checkpoint, Flow)> {
    let file = if path.is_dir() { path.join(CHECKPOINT_FILE) } else { path.to_path_buf() };
    let text = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
    let c: Checkpoint =
        serde_json::from_slice(&text).with_context(|| format!("{} is not a bootflow checkpoint", file.display()))?;
    if c.format != FORMAT {
        return Err(Error::Other(format!(
            "checkpoint {} has format {}, this build reads {FORMAT}",
            file.display(),
            c.format
        )));
    }
    let mut flow = registry
        .flow(c.flow.dim, &c.flow.spec, c.flow.seed)
        .with_context(|| format!("rebuilding the flow of {}", file.display()))?;
    flow.set_params(&c.params).with_context(|| format!("parameters of {}", file.display()))?;
    Ok((c, flow))
}

/// Checks the sizes before anything is written.
fn check_sizes(req: &SampleRequest, has_flow: bool) -> Result<()> {
    let fail = |msg: String| Err(Error::Other(msg));
    let sizes = &req.sizes;
    if sizes.chains == 0 {
        return fail("--chains must be at least 1".into());
    }
    if sizes.draws == 0 {
        return fail("--draws must be at least 1".into());
    }
    if !(sizes.init_scale.is_finite() && sizes.init_scale >= 0.0) {
        return fail(format!("--init-scale must be finite and >= 0, got {}", sizes.init_scale));
    }
    match (req.method, has_flow) {
        (Method::Mis | Method::MisAis, false) => {
            fail(format!("--method {} needs --flow CHECKPOINT", req.method.name()))
        }
        (Method::Hmc | Method::Nuts | Method::Rwm | Method::Exact | Method::Laplace | Method::FlowMcmc, true) => {
            fail("--flow is only used by --method mis / mis-ais".into())
        }
        _ => Ok(()),
    }
}

/// A kernel by name, refusing gradient kernels on targets without a gradient.
fn build_kernel(registry: &Registry, name: &str, target: &dyn Target, cfg: &Value) -> Result<Box<dyn Kernel>> {
    let kernel = registry.kernel(name, target.dim(), cfg).with_context(|| format!("kernel '{name}'"))?;
    if kernel.needs_grad() && !target.has_grad() {
        return Err(Error::Other(format!(
            "kernel '{name}' needs the gradient of the target, which this target does not provide (use rwm)"
        )));
    }
    Ok(kernel)
}

/// The outcome of a sampling run: its summary and every draw.
#[derive(Clone, Debug)]
pub struct Sampled {
    /// The summary (as written to `summary.json`).
    pub summary: Summary,
    /// Every chain's draws.
    pub draws: Draws,
}

/// Runs `bootflow sample`: builds the target (and kernel, and flow), runs the chains into `out`
/// (created if needed) and writes `summary.json` there; returns the summary.
pub fn sample(req: &SampleRequest, out: &Path, registry: &Registry, progress: &dyn RunProgress) -> Result<Summary> {
    check_sizes(req, req.flow.is_some())?;
    let target = build_target(registry, &req.target, &parse_params(&req.target_sets)?)?;
    let flow = req.flow.as_deref().map(|p| load_flow(registry, p)).transpose()?;
    Ok(sample_with(req, target.as_ref(), flow.as_ref(), Some(out), registry, progress)?.summary)
}

/// Runs the chains of `req` on a target (and flow) the caller built: `req.target` and
/// `req.flow` are only recorded. With `out`, writes the chain files and `summary.json` there;
/// either way returns the summary and the draws.
pub fn sample_with(
    req: &SampleRequest,
    target: &dyn Target,
    flow: Option<&Flow>,
    out: Option<&Path>,
    registry: &Registry,
    progress: &dyn RunProgress,
) -> Result<Sampled> {
    check_sizes(req, flow.is_some())?;
    let ais_steps = if req.method == Method::MisAis { req.ais_steps } else { 0 };
    let columns = target.dim() + target.observable_names().len() + 3;
    budget::check_sampling(budget::FLAGS, req.sizes.chains, req.sizes.draws, columns, ais_steps)?;
    if out.is_some() {
        budget::check_open_files("--chains", req.sizes.chains)?;
    }
    let params = parse_params(&req.target_sets)?;
    if req.method == Method::Exact && !target.has_sampler() {
        return Err(Error::Unsupported(format!(
            "--method exact: target '{}' has no exact sampler (use hmc or rwm)",
            req.target
        )));
    }
    if req.method == Method::Laplace && !target.has_grad() {
        return Err(Error::Unsupported(format!(
            "--method laplace: target '{}' has no gradient for the mode search and the Hessian",
            req.target
        )));
    }
    let kernel_name = match req.method {
        Method::Hmc | Method::Nuts | Method::Rwm => req.method.name().to_string(),
        Method::Mis | Method::Exact | Method::Laplace => String::new(),
        Method::FlowMcmc => {
            let nuts = target.has_grad() && registry.kernels.contains_key("nuts");
            if nuts { "nuts" } else { "rwm" }.to_string()
        }
        Method::MisAis => {
            req.ais_kernel.clone().unwrap_or_else(|| if target.has_grad() { "hmc".into() } else { "rwm".into() })
        }
    };
    let kcfg = if kernel_name.is_empty() { json!({}) } else { kernel_config(&kernel_name, &req.kernel_sets)? };
    let kernel = if kernel_name.is_empty() {
        if !req.kernel_sets.is_empty() {
            return Err(Error::Other(format!("--kernel-set has no effect with --method {}", req.method.name())));
        }
        None
    } else {
        Some(build_kernel(registry, &kernel_name, target, &kcfg)?)
    };
    if let Some(f) = flow
        && f.dim() != target.dim()
    {
        return Err(Error::Other(format!(
            "the flow has dimension {} but the target has dimension {}",
            f.dim(),
            target.dim()
        )));
    }
    let sizes = req.sizes;
    let config = json!({
        "target": req.target,
        "target_params": params,
        "method": req.method.name(),
        "chains": sizes.chains,
        "draws": sizes.draws,
        "warmup": sizes.warmup,
        "seed": sizes.seed,
        "init_scale": sizes.init_scale,
        "flow": req.flow.as_ref().map(|p| p.display().to_string()),
        "kernel": if kernel_name.is_empty() { Value::Null } else { json!(kernel_name) },
        "kernel_config": kcfg,
        "ais_steps": (req.method == Method::MisAis).then_some(req.ais_steps),
    });
    let plan = Plan { method: req.method.name().to_string(), sizes, config };
    if let Some(out) = out {
        crate::run::outdir::empty_forced(out)?;
        std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    }
    let mut sampled = match (req.method, kernel, flow) {
        (Method::Hmc | Method::Nuts | Method::Rwm, Some(mut k), _) => {
            with_kernel(k.as_mut(), target, &plan, out, progress)?
        }
        (Method::Mis, _, Some(f)) => with_flow(f, target, None, &plan, out, progress)?,
        (Method::Exact, None, None) => exact(target, &plan, out, progress)?,
        (Method::Laplace, None, None) => crate::run::laplace::laplace(target, &plan, out, progress)?,
        (Method::FlowMcmc, Some(mut k), None) => {
            crate::run::flow_mcmc::flow_mcmc(k.as_mut(), target, registry, &plan, out, progress)?
        }
        (Method::MisAis, Some(k), Some(f)) => {
            let ais = AisRefinement { kernel: k.as_ref(), n_intermediate: req.ais_steps, spacing: Spacing::Linear };
            with_flow(f, target, Some(&ais), &plan, out, progress)?
        }
        _ => unreachable!("check_sizes and the kernel choice cover every method"),
    };
    let mut warnings = warnings::for_chains(&sampled.summary);
    warnings.extend(warnings::for_importance(&sampled.summary));
    warnings.extend(warnings::for_laplace(&sampled.summary));
    sampled.summary.extra.insert(warnings::KEY.into(), json!(warnings));
    if let Some(out) = out {
        sampled.summary.write_atomic(&out.join(SUMMARY_FILE))?;
    }
    Ok(sampled)
}

/// The MIS (or MIS-AIS) chains of `bootflow run` with its freshly trained flow, into `dir`.
pub(crate) fn sample_trained(
    dir: &Path,
    spec: &RunSpec,
    flow: &Flow,
    target: &dyn Target,
    registry: &Registry,
    progress: &dyn RunProgress,
) -> Result<Summary> {
    let s = &spec.sample;
    let config = json!({"target": spec.train.target.name, "method": s.method, "chains": s.chains, "draws": s.draws,
        "seed": spec.train.seed, "flow": CHECKPOINT_FILE, "ais_steps": (s.method == "mis-ais").then_some(s.ais_steps)});
    let sizes = Sizes { chains: s.chains, draws: s.draws, warmup: 0, seed: spec.train.seed, init_scale: 1.0 };
    let plan = Plan { method: s.method.clone(), sizes, config };
    if s.method == "mis" {
        return Ok(with_flow(flow, target, None, &plan, Some(dir), progress)?.summary);
    }
    let name = if target.has_grad() && registry.kernels.contains_key("hmc") { "hmc" } else { "rwm" };
    let kernel = registry.kernel(name, flow.dim(), &kernel_config(name, &[])?)?;
    let ais = AisRefinement { kernel: kernel.as_ref(), n_intermediate: s.ais_steps, spacing: Spacing::Linear };
    Ok(with_flow(flow, target, Some(&ais), &plan, Some(dir), progress)?.summary)
}

/// Runs `plan.chains` chains of `kernel` on `target` (warm-up with adaptation, then draws),
/// writing the chain files into `out` when given.
pub fn with_kernel(
    kernel: &mut dyn Kernel,
    target: &dyn Target,
    plan: &Plan,
    out: Option<&Path>,
    progress: &dyn RunProgress,
) -> Result<Sampled> {
    let s = &plan.sizes;
    let (started, sink) = open_chains(target, plan, out)?;
    let cfg = ChainConfig { n_chains: s.chains, n_warmup: s.warmup, n_draws: s.draws, init_scale: s.init_scale };
    if s.warmup > 0 {
        progress.event(Event::Warmup { transitions: s.warmup, chains: s.chains });
    }
    let counter = progress.counter("draws", (s.chains * s.draws) as u64);
    let stop = progress.stop();
    let run = run_chains(kernel, &TargetDensity(target), &cfg, None, &mut rng::stream(s.seed, 0), |d| {
        if stopped(&stop) {
            return Err(Error::Interrupted);
        }
        for c in 0..d.state.n_chains() {
            sink.record(c, d.state.log_p[c], d.stats.accept_prob[c], d.state.x.column(c).as_slice())?;
        }
        counter.advance(d.state.n_chains() as u64);
        Ok(())
    });
    counter.finish();
    let run = match run {
        Err(Error::Interrupted) => return interrupted_summary(plan, started, sink),
        other => other.context("sampling")?,
    };
    let (mut summary, draws) = chain_summary(plan, started, run.mean_accept, sink)?;
    summary.extra.insert("tuning".into(), Value::Object(tuning_record(&run.tuning, &kernel.tuning())));
    Ok(Sampled { summary, draws })
}

/// The tuning at the end of warm-up, with the kernel's divergence count split into those of the
/// kept draws (`divergences`, from the count at the end) and those of warm-up
/// (`divergences_warmup`), as Stan reports them.
pub(crate) fn tuning_record(
    after_warmup: &[(String, f64)],
    at_end: &[(String, f64)],
) -> serde_json::Map<String, Value> {
    let mut out = serde_json::Map::new();
    for (k, v) in after_warmup {
        match at_end.iter().find(|(e, _)| e == k) {
            Some((_, end)) if k == "divergences" => {
                out.insert("divergences".into(), json!(end - v));
                out.insert("divergences_warmup".into(), json!(v));
            }
            _ => {
                out.insert(k.clone(), json!(v));
            }
        }
    }
    out
}

/// Runs `plan.chains` chains of independent exact draws from `target` (chain `c` from stream
/// `c` of the seed), a batch per chain in turn so that an interruption keeps every chain equally
/// long; writes the chain files into `out` when given.
pub fn exact(target: &dyn Target, plan: &Plan, out: Option<&Path>, progress: &dyn RunProgress) -> Result<Sampled> {
    let s = &plan.sizes;
    let (started, sink) = open_chains(target, plan, out)?;
    let counter = progress.counter("draws", (s.chains * s.draws) as u64);
    let stop = progress.stop();
    let mut rngs: Vec<_> = (0..s.chains).map(|c| rng::stream(s.seed, c as u64)).collect();
    let mut log_p = vec![0.0; PROPOSAL_BATCH];
    let mut run = || -> Result<()> {
        for done in (0..s.draws).step_by(PROPOSAL_BATCH) {
            let m = PROPOSAL_BATCH.min(s.draws - done);
            for (c, rng) in rngs.iter_mut().enumerate() {
                if stopped(&stop) {
                    return Err(Error::Interrupted);
                }
                let x = target.sample(m, rng)?;
                crate::error::check_dim("rows of the exact sampler's batch", x.nrows(), target.dim())?;
                crate::error::check_dim("columns of the exact sampler's batch", x.ncols(), m)?;
                target.log_prob_batch(&x, &mut log_p[..m])?;
                for (j, lp) in log_p[..m].iter().enumerate() {
                    sink.record(c, *lp, 1.0, x.column(j).as_slice())?;
                }
                counter.advance(m as u64);
            }
        }
        Ok(())
    };
    let res = run();
    counter.finish();
    match res {
        Err(Error::Interrupted) => interrupted_summary(plan, started, sink),
        Err(e) => Err(e).context("exact sampling"),
        Ok(()) => {
            let (summary, draws) = chain_summary(plan, started, 1.0, sink)?;
            Ok(Sampled { summary, draws })
        }
    }
}

/// Whether the front end's stop flag is set.
pub(crate) fn stopped(stop: &Option<std::sync::Arc<std::sync::atomic::AtomicBool>>) -> bool {
    stop.as_ref().is_some_and(|f| f.load(std::sync::atomic::Ordering::Relaxed))
}

/// The summary of chains stopped by the front end: every chain cut to the draws all of them
/// reached, the mean acceptance statistic of those, and `"interrupted": true`.
pub(crate) fn interrupted_summary(plan: &Plan, started: Instant, mut sink: ChainSink<'_>) -> Result<Sampled> {
    let kept = sink.truncate_to_shortest();
    if kept == 0 {
        return Err(Error::Interrupted);
    }
    let s = &plan.sizes;
    let mut summary = Summary::new(&plan.method, s.chains, kept, s.seed, started.elapsed().as_secs_f64());
    let (quantities, draws) = sink.finish()?;
    let n = (draws.chains.len() * kept).max(1) as f64;
    summary.acceptance = Some(draws.chains.iter().flat_map(|c| &c.accept_stat).sum::<f64>() / n);
    summary.quantities = quantities;
    summary.extra.insert("config".into(), plan.config.clone());
    summary.extra.insert("interrupted".into(), Value::Bool(true));
    Ok(Sampled { summary, draws })
}

/// Annealing from the flow to the target that refines each MIS proposal (`mis-ais`).
pub struct AisRefinement<'a> {
    /// Kernel of the annealing transitions.
    pub kernel: &'a dyn Kernel,
    /// Intermediate distributions.
    pub n_intermediate: usize,
    /// Spacing of the annealing schedule.
    pub spacing: Spacing,
}

/// Runs `plan.chains` MIS chains with `flow` as proposal (refined by AIS when `ais` is given), and
/// estimates the importance weights' ESS and `log Z` from `chains x draws` fresh proposals;
/// writes the chain files into `out` when given.
pub fn with_flow(
    flow: &Flow,
    target: &dyn Target,
    ais: Option<&AisRefinement<'_>>,
    plan: &Plan,
    out: Option<&Path>,
    progress: &dyn RunProgress,
) -> Result<Sampled> {
    let (started, sink) = open_chains(target, plan, out)?;
    let s = &plan.sizes;
    let proposal = match ais {
        None => Proposal::Flow,
        Some(a) => Proposal::Ais { kernel: a.kernel, n_intermediate: a.n_intermediate, spacing: a.spacing },
    };
    let cfg = MisConfig { n_chains: s.chains, n_draws: s.draws, batch: PROPOSAL_BATCH, keep_draws: false, proposal };
    let counter = progress.counter("draws", (s.chains * s.draws) as u64);
    let stop = progress.stop();
    let res = run_mis(flow, target, &cfg, s.seed, |d| {
        if stopped(&stop) {
            return Err(Error::Interrupted);
        }
        sink.record(d.chain, d.log_p, if d.accepted { 1.0 } else { 0.0 }, d.x)?;
        counter.advance(1);
        Ok(())
    });
    counter.finish();
    let res = match res {
        Err(Error::Interrupted) => return interrupted_summary(plan, started, sink),
        other => other.context("sampling")?,
    };
    let log_w = fresh_log_weights(flow, target, ais, s.chains * s.draws, s.seed)?;
    let (mut summary, draws) = chain_summary(plan, started, res.acceptance, sink)?;
    summary.importance = Some(ImportanceSummary::from_log_weights(&log_w).context("importance weights")?);
    Ok(Sampled { summary, draws })
}

/// The start time and the chain files (in `out`, if given) of `plan`'s run.
pub(crate) fn open_chains<'a>(
    target: &'a dyn Target,
    plan: &Plan,
    out: Option<&Path>,
) -> Result<(Instant, ChainSink<'a>)> {
    let started = Instant::now();
    let s = &plan.sizes;
    let sink = ChainSink::create(out, target, &plan.method, s.seed, s.chains, s.draws, &plan.config)?;
    Ok((started, sink))
}

/// The summary of finished chains (sizes, time since `started`, acceptance, every quantity and
/// the config) and their draws.
pub(crate) fn chain_summary(
    plan: &Plan,
    started: Instant,
    acceptance: f64,
    sink: ChainSink<'_>,
) -> Result<(Summary, Draws)> {
    let s = &plan.sizes;
    let mut summary = Summary::new(&plan.method, s.chains, s.draws, s.seed, started.elapsed().as_secs_f64());
    summary.acceptance = Some(acceptance);
    let (quantities, draws) = sink.finish()?;
    summary.quantities = quantities;
    summary.extra.insert("config".into(), plan.config.clone());
    Ok((summary, draws))
}

/// Log importance weights of `n` fresh proposals, made exactly as MIS makes them. The chains'
/// own weights are not used: rejected proposals never reach the caller, and repeated states
/// would bias the estimate.
fn fresh_log_weights(
    flow: &Flow,
    target: &dyn Target,
    ais: Option<&AisRefinement<'_>>,
    n: usize,
    seed: u64,
) -> Result<Vec<f64>> {
    let mut rng = rng::stream(seed, IMPORTANCE_STREAM);
    let mut annealer = match ais {
        None => None,
        Some(a) => {
            let mut an = Annealer::new(a.kernel, a.n_intermediate, a.spacing)?;
            an.set_adapt(false);
            Some(an)
        }
    };
    let mut log_w = Vec::with_capacity(n);
    while log_w.len() < n {
        let m = PROPOSAL_BATCH.min(n - log_w.len());
        let (x, log_q) = flow.sample_with_log_q(m, &mut rng)?;
        match annealer.as_mut() {
            None => {
                let mut log_p = vec![0.0; m];
                target.log_prob_batch(&x, &mut log_p)?;
                log_w.extend(log_p.iter().zip(&log_q).map(|(p, q)| p - q));
            }
            Some(a) => {
                let o = a.run(&FlowDensity(flow), &TargetDensity(target), x, &log_q, &mut rng)?;
                log_w.extend(o.log_w);
            }
        }
    }
    Ok(log_w)
}
