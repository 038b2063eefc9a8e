//! `bootflow sample --method flow-mcmc`: chains that alternate a local kernel move (NUTS, HMC or
//! a random walk) with a global independent-Metropolis move whose proposal is a flow trained on
//! the fly, by maximum likelihood (forward KL), on the chains' own positions (the idea of
//! flowMC: Gabrié, Rotskoff & Vanden-Eijnden, "Adaptive Monte Carlo augmented with normalizing
//! flows", PNAS 2022; Wong, Gabrié & Foreman-Mackey, "flowMC", JOSS 2023).
//!
//! Warm-up: the first quarter makes local moves only (the kernel adapts, positions fill a replay
//! buffer); then the flow gets a `cholesky` layer at the buffer's mean and covariance in front of
//! [`FLOW_LAYERS`], and each further warm-up transition adds [`TRAIN_STEPS`] Adam steps on
//! buffer minibatches and a global move (every other one, to explore, from the positions'
//! Gaussian widened by half). After warm-up the kernel's tuning and the flow are
//! frozen, so every kept transition (local move, then global move) leaves the target invariant
//! and the kept draws are one Markov chain per chain.

use std::path::Path;

use rand::Rng as _;
use serde_json::json;

use crate::Batch;
use crate::error::{Error, Result, ResultExt};
use crate::flow::Flow;
use crate::model::kernel::{ChainState, Kernel};
use crate::model::target::{LogDensity, Target, TargetDensity};
use crate::registry::{FlowSpec, Registry};
use crate::rng::{self, Rng};
use crate::run::progress::{Event, RunProgress};
use crate::run::sample::{Plan, Sampled, chain_summary, interrupted_summary, open_chains, stopped, tuning_record};
use crate::train::init::draws_layer;
use crate::train::optim::{Adam, AdamConfig};

/// The flow trained during warm-up (before its fitted `cholesky` layer).
pub const FLOW_LAYERS: &str =
    r#"[{"type": "spline", "couplings": 4, "bins": 8, "bound": 5.0, "hidden": [64, 64], "activation": "relu"}]"#;
/// Adam steps per warm-up transition once training has begun.
pub const TRAIN_STEPS: usize = 4;
/// Positions per minibatch.
const MINIBATCH: usize = 256;
/// Positions the replay buffer keeps at most (the oldest are overwritten).
const BUFFER: usize = 50_000;
/// Adam's learning rate.
const LR: f64 = 1e-3;
/// Every other global move of warm-up proposes from the Gaussian of the local warm-up positions
/// widened this much, so that chains reach modes none of them has visited yet (the flow learns
/// only from where the chains have been). The kept draws use the trained flow alone.
const EXPLORE_SCALE: f64 = 1.5;
/// Fewest warm-up transitions: a local quarter to fit the first layer, the rest to train.
pub const MIN_WARMUP: usize = 100;
/// Streams of the run seed: local moves use stream 0 (as plain kernel chains do).
const GLOBAL_STREAM: u64 = 0x676c_6f62;
const TRAIN_STREAM: u64 = 0x0074_726e;

/// The chains' positions seen so far, a ring of at most [`BUFFER`].
struct Positions {
    x: Batch,
    filled: usize,
    next: usize,
}

/// Most values the replay buffer holds (256 MiB), whatever the dimension.
const BUFFER_VALUES: usize = 1 << 25;

impl Positions {
    fn new(dim: usize) -> Self {
        let capacity = BUFFER.min(BUFFER_VALUES / dim.max(1)).max(MINIBATCH);
        Self { x: Batch::zeros(dim, capacity), filled: 0, next: 0 }
    }

    fn push(&mut self, x: &Batch) {
        let capacity = self.x.ncols();
        for c in x.column_iter() {
            self.x.set_column(self.next, &c);
            self.next = (self.next + 1) % capacity;
            self.filled = (self.filled + 1).min(capacity);
        }
    }

    fn minibatch(&self, rng: &mut Rng) -> Batch {
        let picks: Vec<usize> = (0..MINIBATCH).map(|_| rng.random_range(0..self.filled)).collect();
        self.x.select_columns(&picks)
    }

    /// The `cholesky` layer at the positions' regularised mean and covariance.
    fn gaussian_layer(&self) -> Result<serde_json::Value> {
        let x = self.x.columns(0, self.filled).clone_owned();
        draws_layer(&x, "flow-mcmc: mean and covariance of the local warm-up positions")
    }
}

/// The flow of [`FLOW_LAYERS`] with the positions' Gaussian layer at its data end, and the
/// exploring proposal: that Gaussian alone, [`EXPLORE_SCALE`] times wider.
fn build_flows(registry: &Registry, dim: usize, positions: &Positions, seed: u64) -> Result<(Flow, Flow)> {
    let gaussian = positions.gaussian_layer()?;
    let mut layers: Vec<serde_json::Value> =
        serde_json::from_str(FLOW_LAYERS).map_err(|e| Error::Bug(format!("FLOW_LAYERS: {e}")))?;
    layers.push(gaussian.clone());
    let spec = FlowSpec { base_std: 1.0, layers, shard: None, init: None };
    let wide = FlowSpec { base_std: EXPLORE_SCALE, layers: vec![gaussian], shard: None, init: None };
    Ok((registry.flow(dim, &spec, seed)?, registry.flow(dim, &wide, seed)?))
}

/// One maximum-likelihood Adam step of `flow` on a minibatch; returns the minibatch's mean
/// log q. A step whose gradient is not finite is skipped.
fn train_step(flow: &mut Flow, adam: &mut Adam, positions: &Positions, rng: &mut Rng) -> Result<f64> {
    let x = positions.minibatch(rng);
    let n = x.ncols();
    let (log_q, grad) = flow.grad_theta_log_q(&x, &vec![-1.0 / n as f64; n])?;
    if grad.iter().all(|g| g.is_finite()) {
        let mut params = flow.params();
        adam.step(&mut params, &grad)?;
        flow.set_params(&params)?;
    }
    Ok(log_q.iter().sum::<f64>() / n as f64)
}

/// One independent-Metropolis move of every chain with `flow` as proposal; counts acceptances
/// into `accepted`. A proposal where `log p~` or `log q` is not finite is rejected.
fn global_move(
    flow: &Flow,
    density: &dyn LogDensity,
    state: &mut ChainState,
    rng: &mut Rng,
    accepted: &mut [u64],
) -> Result<()> {
    let n = state.n_chains();
    let (xp, log_qp) = flow.sample_with_log_q(n, rng)?;
    let log_q = flow.log_q(&state.x)?;
    let mut log_pp = vec![0.0; n];
    let mut grad = state.grad.as_ref().map(|g| Batch::zeros(g.nrows(), n));
    density.eval(&xp, &mut log_pp, grad.as_mut())?;
    for c in 0..n {
        let log_ratio = (log_pp[c] - log_qp[c]) - (state.log_p[c] - log_q[c]);
        let u: f64 = rng.random();
        if log_pp[c].is_finite() && log_qp[c].is_finite() && !log_ratio.is_nan() && u.ln() < log_ratio {
            state.x.set_column(c, &xp.column(c));
            state.log_p[c] = log_pp[c];
            if let (Some(g), Some(new)) = (state.grad.as_mut(), grad.as_ref()) {
                g.set_column(c, &new.column(c));
            }
            accepted[c] += 1;
        }
    }
    Ok(())
}

/// Runs `plan`'s flow-mcmc chains with `kernel` as the local move (see the module docs), writing
/// the chain files into `out` when given. The `accept_stat__` column holds the local move's
/// acceptance probability; the summary's `flow_mcmc` entry the global moves' acceptance.
pub fn flow_mcmc(
    kernel: &mut dyn Kernel,
    target: &dyn Target,
    registry: &Registry,
    plan: &Plan,
    out: Option<&Path>,
    progress: &dyn RunProgress,
) -> Result<Sampled> {
    let s = &plan.sizes;
    if s.warmup < MIN_WARMUP {
        return Err(Error::Config(format!(
            "--method flow-mcmc trains its flow during warm-up: give --warmup {MIN_WARMUP} or more (got {})",
            s.warmup
        )));
    }
    let (started, sink) = open_chains(target, plan, out)?;
    let density = TargetDensity(target);
    let d = target.dim();
    let mut local = rng::stream(s.seed, 0);
    let mut global = rng::stream(s.seed, GLOBAL_STREAM);
    let mut train = rng::stream(s.seed, TRAIN_STREAM);
    let mut x0 = Batch::zeros(d, s.chains);
    rng::fill_normal(&mut local, x0.as_mut_slice());
    let mut state = ChainState::new(&density, x0 * s.init_scale, kernel.needs_grad())?;
    if let Some(j) = state.log_p.iter().position(|v| !v.is_finite()) {
        return Err(Error::NonFinite(format!(
            "log-density {} at the start point of chain {j}; give a smaller --init-scale",
            state.log_p[j]
        )));
    }
    progress.event(Event::Warmup { transitions: s.warmup, chains: s.chains });
    let stop = progress.stop();
    let mut positions = Positions::new(d);
    let mut flow: Option<(Flow, Flow, Adam)> = None;
    let mut accepted_warmup = vec![0u64; s.chains];
    let mut mean_log_q = f64::NAN;
    let local_phase = s.warmup / 4;
    kernel.set_adapt(true);
    let warmup = progress.counter("warm-up transitions", s.warmup as u64);
    for t in 0..s.warmup {
        if stopped(&stop) {
            return Err(Error::Interrupted);
        }
        kernel.step(&density, &mut state, &mut local).context("flow-mcmc warm-up, local move")?;
        positions.push(&state.x);
        if t + 1 == local_phase {
            let (f, wide) = build_flows(registry, d, &positions, s.seed)?;
            let adam = Adam::new(AdamConfig { lr: LR, ..AdamConfig::default() }, f.n_params())?;
            flow = Some((f, wide, adam));
        }
        if let Some((f, wide, adam)) = flow.as_mut().filter(|_| t >= local_phase) {
            for _ in 0..TRAIN_STEPS {
                mean_log_q = train_step(f, adam, &positions, &mut train)?;
            }
            let proposal = if (t - local_phase) % 2 == 1 { &*wide } else { &*f };
            global_move(proposal, &density, &mut state, &mut global, &mut accepted_warmup)?;
        }
        warmup.advance(1);
    }
    warmup.finish();
    kernel.set_adapt(false);
    let tuning = kernel.tuning();
    let (f, _, _) = flow.ok_or_else(|| Error::Bug("flow-mcmc: the flow was never built".into()))?;
    let counter = progress.counter("draws", (s.chains * s.draws) as u64);
    let mut accepted = vec![0u64; s.chains];
    let mut local_accept = 0.0;
    for _ in 0..s.draws {
        if stopped(&stop) {
            counter.finish();
            return interrupted_summary(plan, started, sink);
        }
        let stats = kernel.step(&density, &mut state, &mut local).context("flow-mcmc, local move")?;
        global_move(&f, &density, &mut state, &mut global, &mut accepted)?;
        for c in 0..s.chains {
            sink.record(c, state.log_p[c], stats.accept_prob[c], state.x.column(c).as_slice())?;
        }
        local_accept += stats.mean_accept();
        counter.advance(s.chains as u64);
    }
    counter.finish();
    let (mut summary, draws) = chain_summary(plan, started, local_accept / s.draws as f64, sink)?;
    let rate = |a: &[u64], moves: usize| a.iter().map(|&v| v as f64 / moves.max(1) as f64).collect::<Vec<_>>();
    let global_rates = rate(&accepted, s.draws);
    summary.extra.insert(
        "flow_mcmc".into(),
        json!({
            "global_accept": global_rates.iter().sum::<f64>() / s.chains as f64,
            "global_accept_per_chain": global_rates,
            "global_accept_warmup": rate(&accepted_warmup, s.warmup - local_phase).iter().sum::<f64>() / s.chains as f64,
            "train_steps": TRAIN_STEPS * (s.warmup - local_phase),
            "final_mean_log_q": mean_log_q,
            "flow_params": f.n_params(),
        }),
    );
    summary.extra.insert("tuning".into(), serde_json::Value::Object(tuning_record(&tuning, &kernel.tuning())));
    Ok(Sampled { summary, draws })
}
