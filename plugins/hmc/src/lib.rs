//! Hamiltonian Monte Carlo for bootflow: the no-U-turn sampler (`nuts`), and a batched leapfrog
//! kernel (`hmc`), both with a diagonal or dense mass matrix (`metric`) that warm-up can adapt in
//! Stan's windows (`adapt_mass`; on by default for `nuts`); `hmc` adds optional per-trajectory
//! step-size jitter and step-size adaptation by dual averaging (sampler warm-up) or a simple
//! multiplicative rule (AIS during training).
//!
//! ```
//! use bootflow_core::Registry;
//! let mut reg = Registry::new();
//! bootflow_hmc::register(&mut reg).unwrap();
//! let k = reg.kernel("hmc", 3, &serde_json::json!({"n_leapfrog": 10, "step_size": 0.1, "jitter": 0.4})).unwrap();
//! assert!(k.needs_grad());
//! ```
#![forbid(unsafe_code)]

pub mod adapt;
pub mod kernel;
pub mod leapfrog;
pub mod mass;
pub mod metric;
pub mod nuts;

#[cfg(test)]
mod nuts_tests;
#[cfg(test)]
mod sampling_tests;

use std::sync::Arc;

use bootflow_core::{Kernel, Registry, Result, Source};

pub use adapt::AdaptMode;
pub use kernel::{Hmc, HmcConfig};
pub use nuts::{Nuts, NutsConfig};

/// Adds the `hmc` and `nuts` kernels to `reg`.
pub fn register(reg: &mut Registry) -> Result<()> {
    reg.add_kernel(
        "hmc",
        Source::Builtin,
        "Hamiltonian Monte Carlo (leapfrog, diagonal or dense mass with optional windowed adaptation, step jitter, dual-averaging or simple step adaptation)",
        Arc::new(|dim, cfg| Ok(Box::new(Hmc::from_config(dim, cfg)?) as Box<dyn Kernel>)),
    )?;
    reg.add_kernel(
        "nuts",
        Source::Builtin,
        "no-U-turn sampler (multinomial, generalised criterion, max_depth, divergences; dual averaging, windowed diagonal or dense mass)",
        Arc::new(|dim, cfg| Ok(Box::new(Nuts::from_config(dim, cfg)?) as Box<dyn Kernel>)),
    )
}

bootflow_core::export_plugin!(name = "hmc", register = register);
