//! The model traits: what a target, a flow layer, an MCMC kernel and a training objective are,
//! and the log-density views samplers work on.

pub mod bijection;
pub mod density;
pub mod kernel;
pub mod objective;
pub mod target;
