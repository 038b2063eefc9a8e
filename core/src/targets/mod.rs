//! Targets built into core: Gaussians and Gaussian mixtures (including the 2-D mixtures of the
//! FAB papers), with analytic gradients, exact samplers and known normalisers.

pub mod checks;
pub mod gaussian;
pub mod gmm_builtins;
pub mod mixture;
pub mod mixture_csv;
pub mod test_function;

use crate::error::Result;
use crate::registry::Registry;

/// Registers every built-in target.
pub fn register(reg: &mut Registry) -> Result<()> {
    gaussian::register(reg)?;
    mixture::register(reg)?;
    gmm_builtins::register(reg)
}
