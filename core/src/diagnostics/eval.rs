//! Evaluation of a trained flow against its target (docs/metrics.md §3; docs/targets.md §4.1,
//! §4.2): Kish ESS and log Z of the flow (and of flow + AIS towards p) on fresh samples, forward
//! ESS and mean `log q` on exact target samples, mean `log q` on the target's test set, and the
//! relative bias of self-normalised estimates of observables whose exact means are known.
//!
//! Samples are drawn in chunks of `chunk` columns, and only log weights and observable values are
//! kept, so memory stays bounded by one chunk of points whatever `samples` is.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Batch;
use crate::diagnostics::importance::{forward_ess, log_z, mis_acceptance, snis};
use crate::error::{Error, Result};
use crate::flow::Flow;
use crate::mcmc::ais::{Annealer, Spacing};
use crate::model::density::FlowDensity;
use crate::model::target::{Target, TargetDensity};
use crate::registry::Registry;
use crate::rng::Rng;

/// AIS from the flow towards p~, as in the first FAB paper's evaluation.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AisEvalConfig {
    /// Number `K` of intermediate distributions (one kernel transition each) between q and p~.
    pub n_intermediate: usize,
    /// How the intermediate inverse temperatures are spaced.
    pub spacing: Spacing,
    /// A registered kernel name and its config.
    pub kernel: String,
    /// The kernel's config (JSON), as the registry's kernel factory takes it.
    pub kernel_config: Value,
    /// Tuned kernel states, one per intermediate distribution (e.g. from a FAB checkpoint).
    pub kernel_state: Option<Vec<Vec<f64>>>,
    /// Whether the kernels keep adapting their step sizes between chunks (each chunk is still a
    /// valid AIS run: a kernel changes only after its transition).
    pub adapt: bool,
}

impl AisEvalConfig {
    /// The annealer this config describes, its kernels built from `registry`.
    pub(crate) fn annealer(&self, registry: &Registry, dim: usize) -> Result<Annealer> {
        let kernel = registry.kernel(&self.kernel, dim, &self.kernel_config)?;
        let mut annealer = Annealer::new(kernel.as_ref(), self.n_intermediate, self.spacing)?;
        if let Some(s) = &self.kernel_state {
            annealer.set_state(s)?;
        }
        annealer.set_adapt(self.adapt);
        Ok(annealer)
    }
}

/// What to evaluate and how much.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EvalConfig {
    /// Fresh flow samples (and exact target samples) for the ESS, log Z and forward estimates.
    pub samples: usize,
    /// Columns per chunk.
    pub chunk: usize,
    /// AIS towards p~ from the flow; `None` evaluates the flow alone.
    pub ais: Option<AisEvalConfig>,
    /// Runs of the bias estimate (consecutive groups of the samples above).
    pub bias_runs: usize,
    /// Samples per bias run.
    pub bias_samples: usize,
}

impl Default for EvalConfig {
    fn default() -> Self {
        Self { samples: 100_000, chunk: 10_000, ais: None, bias_runs: 100, bias_samples: 1000 }
    }
}

/// Self-normalised estimates `E_r` of an observable over independent runs, relative to the exact
/// mean `E` (divided by `|E|`; absolute when `E = 0`): `bias = |mean_r E_r - E|`, `std` = standard
/// deviation of `E_r` over runs, `mean_abs_error = mean_r |E_r - E|`. The first FAB paper's
/// "bias 1.26 % (std 5.83 %)" are the first two (a mean absolute error could not be below its std
/// by that much).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct BiasStats {
    /// `|mean_r E_r - E|`, scaled by `|E|` (unscaled when `E = 0`).
    pub bias: f64,
    /// Standard deviation of the scaled `E_r - E` over runs (divisor: runs).
    pub std: f64,
    /// `mean_r |E_r - E|`, scaled like `bias`.
    pub mean_abs_error: f64,
    /// Number of independent runs (at least 2).
    pub runs: usize,
}

/// Bias of one observable with a known mean.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ObservableBias {
    /// The observable's name, as the target reports it.
    pub name: String,
    /// Its exact mean `E` under p.
    pub exact: f64,
    /// Whether the bias is relative (`exact != 0`) or absolute.
    pub relative: bool,
    /// `None` when the samples make fewer than two runs.
    pub flow: Option<BiasStats>,
    /// The same for the AIS samples; `None` without AIS or with fewer than two runs.
    pub ais: Option<BiasStats>,
}

/// The figures of one evaluation; `None` (JSON null) where the target or config gives no way to
/// compute a figure.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct FlowEval {
    /// Flow samples drawn for the ESS and log Z estimates (and exact target samples, if any).
    pub samples: usize,
    /// Kish ESS fraction of the flow as importance sampler of p.
    pub ess: f64,
    /// Importance-sampling estimate of `ln Z` of p~ from the flow samples.
    pub log_z: f64,
    /// Delta-method standard error of `log_z`.
    pub log_z_se: f64,
    /// Stationary acceptance rate of Metropolised independence sampling with the flow as proposal,
    /// estimated from the same samples ([`mis_acceptance`]); `None` in evaluations saved before
    /// it was reported.
    #[serde(default)]
    pub mis_accept: Option<f64>,
    /// `F_q = E_q[log q - log p~]` from the same samples (>= -log Z, equal when q = p; the
    /// lattice literature's free-energy bound); `None` in evaluations saved before it was reported.
    #[serde(default)]
    pub f_q: Option<f64>,
    /// Standard deviation of the signal `s = log q - log p~` over the same samples (0 when q = p).
    #[serde(default)]
    pub signal_sd: Option<f64>,
    /// The target's exact log Z, where known.
    pub log_z_exact: Option<f64>,
    /// Kish ESS fraction of the AIS weights (flow + AIS towards p); `None` without AIS.
    pub ess_ais: Option<f64>,
    /// `ln Z` estimate from the AIS weights.
    pub log_z_ais: Option<f64>,
    /// Delta-method standard error of `log_z_ais`.
    pub log_z_ais_se: Option<f64>,
    /// Mean acceptance of each AIS transition.
    pub ais_accept: Option<Vec<f64>>,
    /// Forward ESS fraction on exact target samples; `None` when the target cannot sample.
    pub forward_ess: Option<f64>,
    /// Mean `log q` (nats) of the flow on exact target samples.
    pub mean_log_q_target_samples: Option<f64>,
    /// Standard error of that mean (independent exact samples).
    pub mean_log_q_target_samples_se: Option<f64>,
    /// Mean `log q` (nats) on the target's test set; `None` without one.
    pub test_mean_log_q: Option<f64>,
    /// One entry per observable whose exact mean the target knows.
    pub bias: Vec<ObservableBias>,
    /// Wall-clock seconds of the evaluation.
    pub seconds: f64,
}

/// Log weights and observable values of a stream of weighted samples.
#[derive(Default)]
struct Weighted {
    log_w: Vec<f64>,
    /// One vector per observable with a known mean.
    obs: Vec<Vec<f64>>,
}

impl Weighted {
    fn push(&mut self, target: &dyn Target, picks: &[usize], x: &Batch, log_w: &[f64]) -> Result<()> {
        self.log_w.extend_from_slice(log_w);
        if picks.is_empty() {
            return Ok(());
        }
        self.obs.resize(picks.len(), Vec::new());
        let mut all = vec![0.0; target.observable_names().len()];
        for col in x.column_iter() {
            target.observables(col.as_slice(), &mut all)?;
            picks.iter().zip(self.obs.iter_mut()).for_each(|(&i, o)| o.push(all[i]));
        }
        Ok(())
    }

    /// Bias statistics of observable `k` over consecutive runs of `per_run` samples (at most
    /// `max_runs`); `None` when there are too few samples for two runs.
    fn bias(&self, k: usize, exact: f64, per_run: usize, max_runs: usize) -> Result<Option<BiasStats>> {
        let runs = (self.log_w.len() / per_run.max(1)).min(max_runs);
        if runs < 2 {
            return Ok(None);
        }
        let scale = if exact == 0.0 { 1.0 } else { exact.abs() };
        let mut err = Vec::with_capacity(runs);
        for r in 0..runs {
            let range = r * per_run..(r + 1) * per_run;
            let est = snis(&self.log_w[range.clone()], &self.obs[k][range])?;
            err.push((est.mean - exact) / scale);
        }
        let n = runs as f64;
        let mean = err.iter().sum::<f64>() / n;
        let var = err.iter().map(|e| (e - mean).powi(2)).sum::<f64>() / (n - 1.0);
        let mean_abs_error = err.iter().map(|e| e.abs()).sum::<f64>() / n;
        Ok(Some(BiasStats { bias: mean.abs(), std: var.sqrt(), mean_abs_error, runs }))
    }
}

/// Indices into the target's observables and exact means of those whose means are known.
fn known(target: &dyn Target) -> Vec<(usize, String, f64)> {
    let names = target.observable_names();
    target
        .known_means()
        .into_iter()
        .filter_map(|(name, e)| names.iter().position(|n| *n == name).map(|i| (i, name, e)))
        .collect()
}

pub(crate) fn log_weights(target: &dyn Target, x: &Batch, log_q: &[f64]) -> Result<Vec<f64>> {
    let mut log_p = vec![0.0; x.ncols()];
    target.log_prob_batch(x, &mut log_p)?;
    Ok(log_p.iter().zip(log_q).map(|(p, q)| p - q).collect())
}

pub(crate) fn chunks(total: usize, chunk: usize) -> impl Iterator<Item = usize> {
    let c = chunk.max(1);
    (0..total.div_ceil(c)).map(move |i| c.min(total - i * c))
}

/// Evaluates `flow` as a sampler of `target` (see the module docs). The AIS kernel, when
/// `cfg.ais` is set, is built from `registry`.
pub fn evaluate_flow(
    flow: &Flow,
    target: &dyn Target,
    cfg: &EvalConfig,
    registry: &Registry,
    rng: &mut Rng,
) -> Result<FlowEval> {
    let start = std::time::Instant::now();
    if cfg.samples == 0 || cfg.chunk == 0 {
        return Err(Error::Config("evaluation needs samples > 0 and chunk > 0".into()));
    }
    crate::error::check_dim("target dimension", target.dim(), flow.dim())?;
    let picks = known(target);
    let pick_idx: Vec<usize> = picks.iter().map(|p| p.0).collect();

    let mut plain = Weighted::default();
    for n in chunks(cfg.samples, cfg.chunk) {
        let (x, log_q) = flow.sample_with_log_q(n, rng)?;
        let lw = log_weights(target, &x, &log_q)?;
        plain.push(target, &pick_idx, &x, &lw)?;
    }
    let z = log_z(&plain.log_w)?;

    let mut annealed = None;
    let mut ais_accept = None;
    if let Some(a) = &cfg.ais {
        let mut annealer = a.annealer(registry, flow.dim())?;
        let mut w = Weighted::default();
        let mut acc = vec![0.0; a.n_intermediate];
        for n in chunks(cfg.samples, cfg.chunk) {
            let (x0, log_q0) = flow.sample_with_log_q(n, rng)?;
            let out = annealer.run(&FlowDensity(flow), &TargetDensity(target), x0, &log_q0, rng)?;
            w.push(target, &pick_idx, &out.x, &out.log_w)?;
            acc.iter_mut().zip(&out.acceptance).for_each(|(s, v)| *s += v * n as f64);
        }
        ais_accept = Some(acc.iter().map(|s| s / cfg.samples as f64).collect());
        annealed = Some(w);
    }
    let z_ais = annealed.as_ref().map(|w| log_z(&w.log_w)).transpose()?;

    let (mut fwd, mut mean_lq_p, mut mean_lq_p_se) = (None, None, None);
    if target.has_sampler() {
        let mut lw = Vec::with_capacity(cfg.samples);
        let mut lq = Vec::with_capacity(cfg.samples);
        for n in chunks(cfg.samples, cfg.chunk) {
            let x = target.sample(n, rng)?;
            let log_q = flow.log_q(&x)?;
            lw.extend(log_weights(target, &x, &log_q)?);
            lq.extend(log_q);
        }
        fwd = Some(forward_ess(&lw)?);
        let n = lq.len() as f64;
        let m = lq.iter().sum::<f64>() / n;
        let var = if lq.len() > 1 { lq.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (n - 1.0) } else { 0.0 };
        mean_lq_p = Some(m);
        mean_lq_p_se = Some((var / n).sqrt());
    }
    let test_mean_log_q = match target.test_set() {
        Some(t) if t.ncols() > 0 => {
            let lq = flow.log_q(&t)?;
            Some(lq.iter().sum::<f64>() / lq.len() as f64)
        }
        _ => None,
    };

    let mut bias = Vec::with_capacity(picks.len());
    for (k, (_, name, exact)) in picks.into_iter().enumerate() {
        let flow_b = plain.bias(k, exact, cfg.bias_samples, cfg.bias_runs)?;
        let ais_b = match &annealed {
            Some(w) => w.bias(k, exact, cfg.bias_samples, cfg.bias_runs)?,
            None => None,
        };
        bias.push(ObservableBias { name, exact, relative: exact != 0.0, flow: flow_b, ais: ais_b });
    }

    let (f_q, signal_sd) = signal_stats(&plain.log_w);
    Ok(FlowEval {
        samples: cfg.samples,
        ess: z.ess,
        log_z: z.log_z,
        log_z_se: z.se,
        mis_accept: Some(mis_acceptance(&plain.log_w)?),
        f_q: Some(f_q),
        signal_sd: Some(signal_sd),
        log_z_exact: target.log_z(),
        ess_ais: z_ais.map(|z| z.ess),
        log_z_ais: z_ais.map(|z| z.log_z),
        log_z_ais_se: z_ais.map(|z| z.se),
        ais_accept,
        forward_ess: fwd,
        mean_log_q_target_samples: mean_lq_p,
        mean_log_q_target_samples_se: mean_lq_p_se,
        test_mean_log_q,
        bias,
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// Mean and standard deviation of the signal `s = log q - log p~ = -log w`.
fn signal_stats(log_w: &[f64]) -> (f64, f64) {
    let n = log_w.len() as f64;
    let mean = -log_w.iter().sum::<f64>() / n;
    let var = log_w.iter().map(|w| (-w - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    (mean, var.sqrt())
}

#[cfg(test)]
#[path = "eval_tests.rs"]
mod tests;
