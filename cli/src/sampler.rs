//! Runs the chains of `bootflow sample` (and of `bootflow run`) into an output directory: an MCMC
//! kernel on the target (`hmc`, `rwm`, or any registered kernel), or Metropolized independent
//! sampling with a trained flow as proposal (`mis`, `mis-ais`). Writes the chain files as it goes
//! and returns the summary. The `accept_stat__` column holds the kernel's acceptance probability,
//! or for MIS whether the draw is a fresh proposal (1) or a repeat (0).

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use bootflow_core::ais::{Annealer, Spacing};
use bootflow_core::density::FlowDensity;
use bootflow_core::mcmc::chains::{ChainConfig, run_chains};
use bootflow_core::mcmc::mis::{MisConfig, Proposal, run_mis};
use bootflow_core::output::summary::{ImportanceSummary, Summary};
use bootflow_core::{Flow, Kernel, Target, TargetDensity, rng};
use serde_json::{Value, json};

use crate::chain_sink::ChainSink;
use crate::progress::Progress;

/// Proposals drawn at a time per MIS chain, and per batch of the importance estimate.
const PROPOSAL_BATCH: usize = 256;
/// Stream of the fresh proposals behind the importance estimate (chains use streams 0..N-1).
const IMPORTANCE_STREAM: u64 = u64::MAX;

/// Sizes and seed of a sampling run, with the configuration recorded in every chain file.
pub struct Plan {
    pub method: String,
    pub chains: usize,
    pub draws: usize,
    pub warmup: usize,
    pub seed: u64,
    /// Standard deviation of the random start points of kernel chains.
    pub init_scale: f64,
    /// Everything the run was asked to do, as written into the chain files and the summary.
    pub config: Value,
}

/// Runs `plan.chains` chains of `kernel` on `target` (warm-up with adaptation, then draws).
pub fn with_kernel(kernel: &mut dyn Kernel, target: &dyn Target, plan: &Plan, out: &Path) -> Result<Summary> {
    let started = Instant::now();
    let sink = ChainSink::create(out, target, &plan.method, plan.seed, plan.chains, plan.draws, &plan.config)?;
    let cfg =
        ChainConfig { n_chains: plan.chains, n_warmup: plan.warmup, n_draws: plan.draws, init_scale: plan.init_scale };
    if plan.warmup > 0 {
        eprintln!("warm-up: {} transitions of {} chains", plan.warmup, plan.chains);
    }
    let progress = Progress::new("draws", (plan.chains * plan.draws) as u64);
    let run = run_chains(kernel, &TargetDensity(target), &cfg, None, &mut rng::stream(plan.seed, 0), |d| {
        for c in 0..d.state.n_chains() {
            sink.record(c, d.state.log_p[c], d.stats.accept_prob[c], d.state.x.column(c).as_slice())?;
        }
        progress.advance(d.state.n_chains() as u64);
        Ok(())
    })
    .context("sampling")?;
    progress.finish();
    let mut summary = Summary::new(&plan.method, plan.chains, plan.draws, plan.seed, started.elapsed().as_secs_f64());
    summary.acceptance = Some(run.mean_accept);
    summary.quantities = sink.summarize()?;
    let tuning: serde_json::Map<String, Value> = run.tuning.into_iter().map(|(k, v)| (k, json!(v))).collect();
    summary.extra.insert("tuning".into(), Value::Object(tuning));
    summary.extra.insert("config".into(), plan.config.clone());
    Ok(summary)
}

/// Annealing from the flow to the target that refines each MIS proposal (`mis-ais`).
pub struct AisRefinement<'a> {
    pub kernel: &'a dyn Kernel,
    pub n_intermediate: usize,
    pub spacing: Spacing,
}

/// Runs `plan.chains` MIS chains with `flow` as proposal (refined by AIS when `ais` is given), and
/// estimates the importance weights' ESS and `log Z` from `chains x draws` fresh proposals.
pub fn with_flow(
    flow: &Flow,
    target: &dyn Target,
    ais: Option<&AisRefinement<'_>>,
    plan: &Plan,
    out: &Path,
) -> Result<Summary> {
    let started = Instant::now();
    let sink = ChainSink::create(out, target, &plan.method, plan.seed, plan.chains, plan.draws, &plan.config)?;
    let proposal = match ais {
        None => Proposal::Flow,
        Some(a) => Proposal::Ais { kernel: a.kernel, n_intermediate: a.n_intermediate, spacing: a.spacing },
    };
    let cfg =
        MisConfig { n_chains: plan.chains, n_draws: plan.draws, batch: PROPOSAL_BATCH, keep_draws: false, proposal };
    let progress = Progress::new("draws", (plan.chains * plan.draws) as u64);
    let res = run_mis(flow, target, &cfg, plan.seed, |d| {
        sink.record(d.chain, d.log_p, if d.accepted { 1.0 } else { 0.0 }, d.x)?;
        progress.advance(1);
        Ok(())
    })
    .context("sampling")?;
    progress.finish();
    let log_w = fresh_log_weights(flow, target, ais, plan.chains * plan.draws, plan.seed)?;
    let mut summary = Summary::new(&plan.method, plan.chains, plan.draws, plan.seed, started.elapsed().as_secs_f64());
    summary.acceptance = Some(res.acceptance);
    summary.quantities = sink.summarize()?;
    summary.importance = Some(ImportanceSummary::from_log_weights(&log_w).context("importance weights")?);
    summary.extra.insert("config".into(), plan.config.clone());
    Ok(summary)
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
