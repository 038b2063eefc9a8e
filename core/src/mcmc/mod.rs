//! MCMC kernels built into core, the multi-chain driver for kernels, and Metropolized
//! independent sampling with a flow proposal.

pub mod ais;
pub mod chains;
pub mod mis;
pub mod rwm;

use std::sync::Arc;

use crate::registry::{Registry, Source};

/// Registers the built-in kernels.
pub fn register(reg: &mut Registry) -> crate::Result<()> {
    reg.add_kernel(
        "rwm",
        Source::Builtin,
        "random-walk Metropolis with an isotropic Gaussian proposal (no gradient needed)",
        Arc::new(|dim, cfg| Ok(Box::new(rwm::RandomWalk::from_config(dim, cfg)?) as Box<dyn crate::Kernel>)),
    )
}
