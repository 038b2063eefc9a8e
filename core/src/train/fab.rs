//! FAB: flow annealed importance sampling bootstrap with the alpha = 2 divergence (docs/metrics.md §4.3).
//!
//! Each step draws a batch from the flow, moves it by AIS (one kernel per intermediate density)
//! and fits the flow to the weighted AIS samples; no gradient flows through AIS.
//! - `form = "p"` (first paper): AIS towards p~; surrogate `L = LSE_l(v_l)`,
//!   `v_l = log w_l + log p~(x_l) - log q(x_l)` with `x, w` fixed. Since only `log q` depends on
//!   theta, `dL = sum_l softmax(v)_l * (-d log q(x_l))`: a self-normalised weighting of
//!   `-grad log q` with weights `w_l p~(x_l) / q(x_l)`.
//! - `form = "p2q"` (later paper): AIS towards p~^2/q; `L = -sum_l wbar_l log q(x_l)`,
//!   `wbar = softmax(log w)` fixed. With a replay buffer the batch is drawn from the buffer in
//!   proportion to `w` and `L = -mean log q`; a new AIS batch enters the buffer every
//!   `batches_per_ais` steps, and the reported metrics are those of the latest AIS batch.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Batch;
use crate::diagnostics::importance::{kish_ess, log_sum_exp};
use crate::error::{Error, Result, ResultExt};
use crate::flow::Flow;
use crate::mcmc::ais::{Annealer, Spacing};
use crate::model::density::{FlowDensity, SquaredOverFlow};
use crate::model::objective::{Objective, ObjectiveOutput};
use crate::model::target::{Target, TargetDensity};
use crate::registry::{KernelFactory, Registry, parse_config};
use crate::rng::Rng;
use crate::train::buffer::ReplayBuffer;
use crate::train::weights::{mean, softmax};

/// Which density AIS anneals towards, and the matching loss.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
pub enum FabForm {
    /// `"p"`: AIS towards p~, loss `LSE_l(log w_l + log p~ - log q)` (first paper).
    #[serde(rename = "p")]
    P,
    /// `"p2q"`: AIS towards p~^2/q, loss `-sum_l wbar_l log q(x_l)` (later paper; allows a buffer).
    #[serde(rename = "p2q")]
    P2q,
}

/// Keys of the `buffer` table.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BufferConfig {
    /// Capacity (oldest evicted first).
    pub size: usize,
    /// AIS batches are added until the buffer holds this many before any gradient step.
    pub min: usize,
    /// Gradient steps per AIS batch.
    pub batches_per_ais: usize,
    /// Points per gradient step (default: the objective's `batch`).
    pub batch: Option<usize>,
    /// Upper clip of the staleness factor `q_stored(x) / q_now(x)` that weights a drawn point's
    /// term in the loss (as a ratio).
    pub max_w_adjust: f64,
}

impl Default for BufferConfig {
    fn default() -> Self {
        Self { size: 512_000, min: 65_536, batches_per_ais: 8, batch: None, max_w_adjust: 10.0 }
    }
}

/// Configuration keys of `fab`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FabConfig {
    /// Which density AIS anneals towards and the matching loss (default `p2q`).
    pub form: FabForm,
    /// Flow samples per AIS batch (> 0).
    pub batch: usize,
    /// Intermediate distributions of AIS, one kernel transition each.
    pub n_intermediate: usize,
    /// Spacing of the intermediate inverse temperatures.
    pub spacing: Spacing,
    /// Registered name of the AIS transition kernel (default `hmc`).
    pub kernel: String,
    /// The kernel's config table.
    pub kernel_config: Value,
    /// Whether the kernels keep adapting their step sizes during training.
    pub adapt: bool,
    /// Prioritised replay buffer (form `p2q` only); `None` trains on each AIS batch once.
    pub buffer: Option<BufferConfig>,
}

impl Default for FabConfig {
    fn default() -> Self {
        Self {
            form: FabForm::P2q,
            batch: 128,
            n_intermediate: 2,
            spacing: Spacing::Linear,
            kernel: "hmc".into(),
            kernel_config: Value::Null,
            adapt: true,
            buffer: None,
        }
    }
}

/// One AIS batch started from the flow.
pub struct AisBatch {
    pub x: Batch,
    pub log_w: Vec<f64>,
    /// The AIS end density at `x` (`log p~` for form p, `2 log p~ - log q` for p2q).
    pub log_end: Vec<f64>,
    pub metrics: Vec<(String, f64)>,
}

/// Everything `state()` saves.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct FabState {
    kernels: Vec<Vec<f64>>,
    buffer: Option<ReplayBuffer>,
    since_ais: u64,
    last_ais_metrics: Vec<(String, f64)>,
}

/// The FAB objective.
pub struct Fab {
    config: FabConfig,
    kernel_factory: KernelFactory,
    /// Built at the first step, when the dimension is known.
    annealer: Option<Annealer>,
    state: FabState,
    /// Buffer slots of the last gradient batch with their `log q` before the update.
    last_draw: Option<(Vec<usize>, Vec<f64>)>,
}

impl Fab {
    pub fn new(config: FabConfig, registry: &Registry) -> Result<Self> {
        let entry = registry
            .kernels
            .get(&config.kernel)
            .ok_or_else(|| Error::unknown("kernel", &config.kernel, registry.kernels.keys().map(String::as_str)))?;
        if config.batch == 0 {
            return Err(Error::Config("fab: batch must be positive".into()));
        }
        if let Some(b) = &config.buffer {
            let bad = |key: &str, why: String| Err(Error::Config(format!("fab: buffer.{key} {why}")));
            if b.size == 0 {
                return bad("size", "must be at least 1".into());
            }
            if b.min > b.size {
                return bad("min", format!("= {} is above buffer.size = {}", b.min, b.size));
            }
            if b.batches_per_ais == 0 {
                return bad("batches_per_ais", "must be at least 1".into());
            }
            if b.batch == Some(0) {
                return bad("batch", "must be at least 1".into());
            }
            if !(b.max_w_adjust > 0.0 && b.max_w_adjust.is_finite()) {
                return bad("max_w_adjust", format!("must be positive and finite, got {}", b.max_w_adjust));
            }
            if config.form != FabForm::P2q {
                return Err(Error::Config("fab.buffer needs form = \"p2q\"".into()));
            }
        }
        Ok(Self {
            kernel_factory: entry.factory.clone(),
            config,
            annealer: None,
            state: FabState::default(),
            last_draw: None,
        })
    }

    pub fn from_config(cfg: &Value, registry: &Registry) -> Result<Self> {
        Self::new(parse_config("fab objective", cfg)?, registry)
    }

    fn annealer(&mut self, dim: usize) -> Result<&mut Annealer> {
        if self.annealer.is_none() {
            let kernel = (self.kernel_factory)(dim, &self.config.kernel_config).context("objective.kernel_config")?;
            let mut a = Annealer::new(kernel.as_ref(), self.config.n_intermediate, self.config.spacing)?;
            a.set_adapt(self.config.adapt);
            if !self.state.kernels.is_empty() {
                a.set_state(&self.state.kernels)?;
            }
            self.annealer = Some(a);
        }
        Ok(self.annealer.as_mut().expect("just built"))
    }

    /// Draws a flow batch and runs AIS on it towards this form's end density.
    pub fn ais_batch(&mut self, flow: &Flow, target: &dyn Target, rng: &mut Rng) -> Result<AisBatch> {
        let n = self.config.batch;
        let form = self.config.form;
        let (x0, log_q0) = flow.sample_with_log_q(n, rng)?;
        let mut log_p0 = vec![0.0; n];
        target.log_prob_batch(&x0, &mut log_p0)?;
        let flow_log_w: Vec<f64> = log_p0.iter().zip(&log_q0).map(|(p, q)| p - q).collect();
        let annealer = self.annealer(flow.dim())?;
        let start = FlowDensity(flow);
        let out = match form {
            FabForm::P => annealer.run(&start, &TargetDensity(target), x0, &log_q0, rng)?,
            FabForm::P2q => annealer.run(&start, &SquaredOverFlow { flow, target }, x0, &log_q0, rng)?,
        };
        let mut metrics = vec![
            ("ess".to_string(), kish_ess(&flow_log_w).unwrap_or(f64::NAN)),
            ("ess_ais".into(), kish_ess(&out.log_w).unwrap_or(f64::NAN)),
        ];
        if !out.acceptance.is_empty() {
            metrics.push(("ais_accept".into(), mean(&out.acceptance)));
        }
        let steps: Vec<f64> = annealer
            .kernels()
            .iter()
            .flat_map(|k| k.tuning())
            .filter(|(name, _)| name == "step_size")
            .map(|(_, v)| v)
            .collect();
        if !steps.is_empty() {
            metrics.push(("step_size".into(), mean(&steps)));
        }
        Ok(AisBatch { x: out.x, log_w: out.log_w, log_end: out.log_end, metrics })
    }

    fn step_with_buffer(&mut self, flow: &Flow, target: &dyn Target, rng: &mut Rng) -> Result<ObjectiveOutput> {
        let bc = self.config.buffer.clone().expect("called with a buffer");
        let dim = flow.dim();
        if self.state.buffer.is_none() {
            self.state.buffer = Some(ReplayBuffer::new(dim, bc.size)?);
        }
        let due = self.state.since_ais.is_multiple_of(bc.batches_per_ais as u64);
        let mut first = due;
        // Filling takes min / batch AIS batches when every sample has a finite weight; the bound
        // allows a quarter of them to count, and stops a fill that would never end.
        let max_batches = 4 * bc.min.div_ceil(self.config.batch.max(1)) + 8;
        let mut batches = 0;
        while first || self.state.buffer.as_ref().is_some_and(|b| b.len() < bc.min) {
            let buffer_len = self.state.buffer.as_ref().map_or(0, |b| b.len());
            if batches == max_batches {
                return Err(Error::Other(format!(
                    "the replay buffer holds {buffer_len} of the {} points it needs after {batches} AIS batches: \
                     almost every AIS sample has a non-finite weight or log q (does the flow sample outside \
                     the target's support?)",
                    bc.min
                )));
            }
            let ais = self.ais_batch(flow, target, rng)?;
            let log_q = flow.log_q(&ais.x)?;
            self.state.buffer.as_mut().expect("created above").push(&ais.x, &ais.log_w, &log_q)?;
            // Only finite values are kept: they go into the checkpoint, where JSON has no NaN.
            self.state.last_ais_metrics = ais.metrics.into_iter().filter(|(_, v)| v.is_finite()).collect();
            first = false;
            batches += 1;
        }
        self.state.since_ais += 1;
        let buffer = self.state.buffer.as_ref().expect("created above");
        let m = bc.batch.unwrap_or(self.config.batch);
        let idx = buffer.sample(m, rng)?;
        let x = buffer.points(&idx);
        // The points were drawn with weights for the flow of their last update; each term of
        // -mean(log q) is reweighted by q_stored / q_now (clipped) for the flow's drift since.
        let rec = flow.inverse_record(&x)?;
        let stale: Vec<f64> = buffer
            .stored_log_q(&idx)
            .iter()
            .zip(&rec.log_q)
            .map(|(old, now)| (old - now).exp().min(bc.max_w_adjust))
            .collect();
        let weights: Vec<f64> = stale.iter().map(|s| -s / m as f64).collect();
        let loss = weights.iter().zip(&rec.log_q).map(|(w, q)| w * q).sum();
        let grad = flow.grad_theta_recorded(&rec, &weights)?;
        self.last_draw = Some((idx, rec.log_q));
        Ok(ObjectiveOutput { loss, grad, metrics: self.state.last_ais_metrics.clone() })
    }
}

#[cfg(test)]
impl Fab {
    /// The last buffer batch: slots and `log q` before the update.
    pub(crate) fn last_draw_for_tests(&self) -> (Vec<usize>, Vec<f64>) {
        self.last_draw.clone().expect("a buffer batch was drawn")
    }
}

/// First paper's surrogate and its gradient: `LSE_l(log w_l + log p~(x_l) - log q(x_l))`.
pub fn surrogate_p(flow: &Flow, x: &Batch, log_w: &[f64], log_p: &[f64]) -> Result<(f64, Vec<f64>)> {
    // One recorded inverse pass: the weights depend on log q, the gradient reuses its tapes.
    let rec = flow.inverse_record(x)?;
    let v: Vec<f64> = log_w.iter().zip(log_p).zip(&rec.log_q).map(|((w, p), q)| w + p - q).collect();
    let weights: Vec<f64> = softmax(&v).iter().map(|s| -s).collect();
    let grad = flow.grad_theta_recorded(&rec, &weights)?;
    Ok((log_sum_exp(&v), grad))
}

/// Later paper's surrogate and its gradient: `-sum_l softmax(log w)_l log q(x_l)`.
pub fn surrogate_p2q(flow: &Flow, x: &Batch, log_w: &[f64]) -> Result<(f64, Vec<f64>)> {
    let weights: Vec<f64> = softmax(log_w).iter().map(|s| -s).collect();
    let (log_q, grad) = flow.grad_theta_log_q(x, &weights)?;
    Ok((weights.iter().zip(&log_q).map(|(w, q)| if *w == 0.0 { 0.0 } else { w * q }).sum(), grad))
}

impl Objective for Fab {
    fn estimate(&mut self, flow: &Flow, target: &dyn Target, rng: &mut Rng) -> Result<ObjectiveOutput> {
        self.last_draw = None;
        if self.config.buffer.is_some() {
            return self.step_with_buffer(flow, target, rng);
        }
        let ais = self.ais_batch(flow, target, rng)?;
        let (loss, grad) = match self.config.form {
            FabForm::P => surrogate_p(flow, &ais.x, &ais.log_w, &ais.log_end)?,
            FabForm::P2q => surrogate_p2q(flow, &ais.x, &ais.log_w)?,
        };
        Ok(ObjectiveOutput { loss, grad, metrics: ais.metrics })
    }

    /// Brings the stored weights of the last buffer batch up to date with the flow it was drawn
    /// under (only for applied steps: a skipped step leaves the buffer as it was). The update just
    /// made is accounted for the next time a point is drawn.
    fn after_update(&mut self, _flow: &Flow) -> Result<()> {
        let (Some((idx, log_q)), Some(buffer)) = (self.last_draw.take(), self.state.buffer.as_mut()) else {
            return Ok(());
        };
        buffer.adjust(&idx, &log_q)
    }

    fn state(&self) -> Value {
        let mut s = self.state.clone();
        if let Some(a) = &self.annealer {
            s.kernels = a.state();
        }
        serde_json::to_value(s).unwrap_or(Value::Null)
    }

    fn set_state(&mut self, state: &Value) -> Result<()> {
        let s: FabState = parse_config("fab objective state", state)?;
        if let Some(b) = &s.buffer {
            b.validate()?;
        }
        if let Some(a) = self.annealer.as_mut() {
            a.set_state(&s.kernels)?;
        }
        self.state = s;
        self.last_draw = None;
        Ok(())
    }
}
