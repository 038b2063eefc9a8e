//! Two-dimensional lattice phi^4 on an L x L periodic lattice: `log p~ = -S(phi)` with analytic
//! gradient, in the "tutorial" or "standard" normalisation, and the observables `M`, `abs_M`
//! (|M|/V), `chi2` (M^2/V), `E` ((1/(2V)) sum_{x,mu} phi_x phi_{x+mu}) and `phi2` (mean phi^2).
//!
//! Registered name: `phi4`, keys `L` (default 8), `m2` (default -4), `lambda` (default 8),
//! `normalisation` (`"tutorial"`, the default, or `"standard"`). For the free field
//! (lambda = 0, m2 > 0) `log_z` and the observables' exact means are known.
#![forbid(unsafe_code)]

pub mod action;
pub mod free_field;
pub mod target;

use std::sync::Arc;

use bootflow_core::{Registry, Result, Source, Target};
use serde_json::Value;

pub use action::Normalisation;
pub use target::Phi4;

/// Registers `phi4`.
pub fn register(reg: &mut Registry) -> Result<()> {
    reg.add_target(
        "phi4",
        Source::Builtin,
        "2-D lattice phi^4 (keys L, m2, lambda, normalisation = tutorial | standard); observables M, abs_M, chi2, E, phi2",
        Arc::new(|cfg: &Value| Ok(Box::new(Phi4::from_config(cfg)?) as Box<dyn Target>)),
    )
}

#[cfg(test)]
mod tests;

bootflow_core::export_plugin!(name = "phi4", register = register);
