//! The run configuration of `bootflow train CONFIG.toml`.
//!
//! ```toml
//! seed = 0
//!
//! [target]            # a registered target name or a path to a .rhai script, plus its own keys
//! name = "gmm5"
//!
//! [flow]              # crate::registry::FlowSpec
//! base_std = 1.0
//! init = "laplace"    # or "warmup", "none"; absent: see crate::train::init
//! layers = [{ type = "realnvp", couplings = 10, hidden = [40], activation = "relu" }]
//!
//! [objective]         # a registered objective name plus its own keys
//! name = "fab"
//! form = "p2q"        # "p" (AIS towards p) or "p2q" (AIS towards p^2/q)
//! batch = 128
//! n_intermediate = 2
//! spacing = "linear"  # or "geometric"
//! kernel = "hmc"      # AIS transitions: "hmc", "nuts", "rwm" or a plugin kernel
//! kernel_config = { n_leapfrog = 5 }
//! adapt = true
//! buffer = { size = 512000, min = 65536, batches_per_ais = 8, batch = 128, max_w_adjust = 10.0 }
//!
//! [train]
//! steps = 1000
//! lr = 5e-4
//! lr_final = 5e-5     # cosine decay to this over `steps`; absent: constant
//! weight_decay = 0.0   # decoupled (AdamW); 0 is plain Adam
//! clip_norm = 100.0    # gradient-norm clip; absent: none
//! log_every = 10       # rows of metrics.csv
//! checkpoint_every = 100  # 0: only at the end
//! max_seconds = 1200.0    # stop after this much training time; absent: run all steps
//! eval_every = 500        # flow ESS etc. on fresh samples into eval.csv; 0: never
//! eval_samples = 10000
//! gradvar_every = 0        # gradient variance of each estimator into gradvar.csv; 0: never
//! gradvar_batches = 100    # gradients per estimator at each of those steps
//! gradvar_estimators = ["g1", "g2", "g3"]  # absent: every reverse-KL one the target allows
//! max_skipped = 50        # stop with an error after this many skipped steps in a row
//! ```
//!
//! `kl` takes `estimator = "g1" | "g2" | "g3" | "path" | "fast-path"` and `batch`;
//! `forward-kl` takes `batch`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::registry::FlowSpec;
use crate::train::optim::AdamConfig;

/// Everything `bootflow train` reads.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// Seed of every random stream of the run (default 0).
    #[serde(default)]
    pub seed: u64,
    /// `[target]`: a registered target name or a `.rhai` script path, plus its keys.
    pub target: Component,
    /// `[flow]`: the flow's base distribution and layers.
    pub flow: FlowSpec,
    /// `[objective]`: the training objective (`fab`, `kl`, `forward-kl`, ...) and its keys.
    pub objective: Component,
    /// `[train]`: loop, optimiser and output settings (defaults when absent).
    #[serde(default)]
    pub train: TrainConfig,
}

/// A component chosen by `name`; every other key goes to its factory (which rejects unknown ones).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Component {
    /// The registered name (or, for a target, a script path).
    pub name: String,
    /// Every other key of the table, passed to the factory as its config.
    #[serde(flatten)]
    pub params: Map<String, Value>,
}

impl Component {
    /// A component with no keys besides its name.
    pub fn named(name: &str) -> Self {
        Self { name: name.into(), params: Map::new() }
    }

    /// The factory's config table.
    pub fn config(&self) -> Value {
        Value::Object(self.params.clone())
    }
}

/// Keys of `[train]`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    /// Optimisation steps to run (skipped steps count).
    pub steps: u64,
    /// Adam learning rate (the initial one when `lr_final` is set).
    pub lr: f64,
    /// With a value, the learning rate falls from `lr` to `lr_final` over `steps` along a half
    /// cosine; without, it stays at `lr`.
    pub lr_final: Option<f64>,
    /// Decoupled (AdamW) weight decay; 0 is plain Adam.
    pub weight_decay: f64,
    /// Rescale the gradient to at most this Euclidean norm; no clipping when absent.
    pub clip_norm: Option<f64>,
    /// Steps between rows of `metrics.csv` (and observer reports); at least 1.
    pub log_every: u64,
    /// Steps between checkpoints; 0 writes one only at the end.
    pub checkpoint_every: u64,
    /// Training stops after this many seconds of training time (a final checkpoint is written),
    /// whatever `steps` says.
    pub max_seconds: Option<f64>,
    /// Steps between evaluations of the flow on fresh samples, written to `eval.csv`; 0 never.
    pub eval_every: u64,
    /// Fresh flow samples (and exact target samples) per evaluation.
    pub eval_samples: usize,
    /// Training stops with an error after this many skipped steps in a row: a loss or gradient
    /// that stays non-finite means the target or the flow is broken, not unlucky.
    pub max_skipped: u64,
    /// Steps between measurements of each gradient estimator's variance at the current
    /// parameters (as `bootflow gradvar`), written to `gradvar.csv`; 0 never.
    #[serde(skip_serializing_if = "is_zero")]
    pub gradvar_every: u64,
    /// Gradients per estimator at each of those measurements (at least 2).
    #[serde(skip_serializing_if = "is_default_gradvar_batches")]
    pub gradvar_batches: usize,
    /// Estimators measured (names as `bootflow gradvar --estimators`); empty: every reverse-KL
    /// estimator the target allows.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub gradvar_estimators: Vec<String>,
}

/// Gradients per estimator of a `gradvar.csv` measurement unless `train.gradvar_batches` says.
const GRADVAR_BATCHES: usize = 100;

// The gradient-variance keys are left out of written configs and checkpoints while they hold
// their defaults, so files of runs that do not measure it read as before.
fn is_zero(v: &u64) -> bool {
    *v == 0
}

fn is_default_gradvar_batches(v: &usize) -> bool {
    *v == GRADVAR_BATCHES
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            steps: 1000,
            lr: 1e-3,
            lr_final: None,
            weight_decay: 0.0,
            clip_norm: None,
            log_every: 10,
            checkpoint_every: 0,
            max_seconds: None,
            eval_every: 0,
            eval_samples: 10_000,
            max_skipped: 50,
            gradvar_every: 0,
            gradvar_batches: GRADVAR_BATCHES,
            gradvar_estimators: Vec::new(),
        }
    }
}

impl TrainConfig {
    /// The learning rate of the step after `step` steps.
    pub fn lr_at(&self, step: u64) -> f64 {
        match self.lr_final {
            Some(end) if self.steps > 0 => {
                let progress = (step as f64 / self.steps as f64).min(1.0);
                end + 0.5 * (self.lr - end) * (1.0 + (std::f64::consts::PI * progress).cos())
            }
            _ => self.lr,
        }
    }

    /// The optimiser settings.
    pub fn adam(&self) -> AdamConfig {
        AdamConfig { lr: self.lr, weight_decay: self.weight_decay, clip_norm: self.clip_norm, ..AdamConfig::default() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_example_parses_and_unknown_keys_are_refused() {
        let doc = include_str!("config.rs");
        let toml_text: String = doc
            .lines()
            .skip_while(|l| !l.starts_with("//! ```toml"))
            .skip(1)
            .take_while(|l| !l.starts_with("//! ```"))
            .map(|l| format!("{}\n", l.trim_start_matches("//!").trim_start()))
            .collect();
        let cfg: RunConfig = toml::from_str(&toml_text).unwrap();
        assert_eq!(cfg.target.name, "gmm5");
        assert_eq!(cfg.objective.params["form"], Value::from("p2q"));
        assert_eq!(cfg.train.checkpoint_every, 100);
        assert_eq!(cfg.train.adam().clip_norm, Some(100.0));
        assert_eq!(cfg.flow.layers.len(), 1);
        assert_eq!(cfg.train.lr_at(0), cfg.train.lr);
        assert!((cfg.train.lr_at(cfg.train.steps / 2) - 0.5 * (5e-4 + 5e-5)).abs() < 1e-15);
        assert!((cfg.train.lr_at(cfg.train.steps) - 5e-5).abs() < 1e-18);
        assert!((cfg.train.lr_at(10 * cfg.train.steps) - 5e-5).abs() < 1e-18);
        let bad = toml_text.replace("log_every", "log_evry");
        let msg = toml::from_str::<RunConfig>(&bad).unwrap_err().to_string();
        assert!(msg.contains("log_evry"), "{msg}");
    }
}
