//! Training: objectives (reverse KL with five estimators, forward KL, FAB), the replay buffer,
//! the training loop with metrics and checkpoints, and the run configuration.

pub mod buffer;
pub mod checkpoint;
pub mod config;
pub mod fab;
pub mod fast_path;
pub mod float_bits;
pub mod forward_kl;
pub mod kl;
pub mod observer;
pub mod trainer;
pub mod weights;

#[cfg(test)]
mod fab_tests;
#[cfg(test)]
mod kl_tests;
#[cfg(test)]
mod test_support;
#[cfg(test)]
mod trainer_tests;

use std::sync::Arc;

use crate::error::Result;
use crate::objective::Objective;
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
        "forward KL(p||q) on exact target samples",
        Arc::new(|cfg, _| Ok(Box::new(forward_kl::ForwardKl::from_config(cfg)?) as Box<dyn Objective>)),
    )?;
    reg.add_objective(
        "fab",
        Source::Builtin,
        "FAB (alpha = 2 with AIS towards p or p^2/q), optional prioritised replay buffer",
        Arc::new(|cfg, reg| Ok(Box::new(fab::Fab::from_config(cfg, reg)?) as Box<dyn Objective>)),
    )
}
