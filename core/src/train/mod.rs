//! Training: objectives (reverse KL with five estimators, forward KL, FAB), the replay buffer,
//! the training loop with metrics and checkpoints, and the run configuration.
//!
//! ```
//! use bootflow_core::{Component, TrainConfig, Trainer};
//! use bootflow_core::{FlowSpec, Registry, Result, Target, parse_config};
//!
//! /// N(2, 1) in 1-D.
//! struct Shifted;
//! impl Target for Shifted {
//!     fn dim(&self) -> usize { 1 }
//!     fn log_prob(&self, x: &[f64]) -> Result<f64> { Ok(-0.5 * (x[0] - 2.0).powi(2)) }
//! }
//!
//! let reg = Registry::with_builtins();
//! let flow: FlowSpec = parse_config("flow", &serde_json::json!({"layers": [{"type": "affine"}]}))?;
//! let mut kl = Component::named("kl");
//! kl.params.insert("estimator".into(), "g2".into());
//! let train = TrainConfig { steps: 200, lr: 0.05, ..Default::default() };
//! let mut trainer = Trainer::new(&reg, Box::new(Shifted), 0, &flow, &kl, &train)?;
//! trainer.run()?;
//! assert!((trainer.flow().params()[1] - 2.0).abs() < 0.2); // the learned shift
//! # Ok::<(), bootflow_core::Error>(())
//! ```

pub mod buffer;
pub mod checkpoint;
pub mod config;
pub mod fab;
pub mod float_bits;
pub mod forward_kl;
pub mod init;
pub mod kl;
pub mod observer;
pub mod optim;
pub mod sample_files;
pub mod trainer;
pub mod weights;

#[cfg(test)]
mod fab_tests;
#[cfg(test)]
mod kl_tests;
#[cfg(test)]
pub(crate) mod test_support;
#[cfg(test)]
mod toy_tests;
#[cfg(test)]
mod trainer_tests;

use std::sync::Arc;

use crate::error::Result;
use crate::model::objective::Objective;
use crate::registry::{Registry, Source};

/// Registers the built-in objectives `kl`, `forward-kl` and `fab`.
pub fn register(reg: &mut Registry) -> Result<()> {
    reg.add_objective(
        "kl",
        Source::Builtin,
        "reverse KL(q||p); estimator = g1 | g2 | g3 | path | fast-path",
        Arc::new(|cfg, _| Ok(Box::new(kl::ReverseKl::from_config(cfg)?) as Box<dyn Objective>)),
    )?;
    reg.add_objective(
        "forward-kl",
        Source::Builtin,
        "forward KL(p||q) on exact target samples or samples = FILE_OR_GLOB; estimator = ml | path",
        Arc::new(|cfg, _| Ok(Box::new(forward_kl::ForwardKl::from_config(cfg)?) as Box<dyn Objective>)),
    )?;
    reg.add_objective(
        "fab",
        Source::Builtin,
        "FAB (alpha = 2 with AIS towards p or p^2/q), optional prioritised replay buffer",
        Arc::new(|cfg, reg| Ok(Box::new(fab::Fab::from_config(cfg, reg)?) as Box<dyn Objective>)),
    )
}
