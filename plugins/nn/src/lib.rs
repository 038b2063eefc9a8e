//! Pieces shared by bootflow's coupling and autoregressive layers: the dense conditioner
//! network [`mlp::Mlp`] (batched GEMMs, hand-written backward pass), its [`Activation`]s, and
//! the frozen/active [`mask`] splits of coupling layers.
//!
//! A plain library (not a plugin), so that several plugins can link it.

pub mod activation;
pub mod mask;
pub mod mlp;

pub use activation::Activation;
pub use mask::{MaskKind, Split};
