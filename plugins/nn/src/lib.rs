//! Pieces shared by bootflow's coupling and autoregressive layers: the dense conditioner
//! network [`mlp::Mlp`] (batched GEMMs, hand-written backward pass), the convolutional one on a
//! periodic lattice [`conv::Conv`] (im2col GEMMs), its [`Activation`]s, and
//! the frozen/active [`mask`] splits of coupling layers. A network runs its products in f64 or,
//! with [`Precision::Mixed`], in f32 (see [`precision`]).
//!
//! A plain library (not a plugin), so that several plugins can link it.

#![warn(missing_docs)]

pub mod activation;
pub mod conditioner;
pub mod conv;
pub mod coupling;
mod gemm;
pub mod mask;
pub mod mlp;
pub mod precision;
pub mod real;

pub use activation::Activation;
pub use mask::{MaskKind, Split};
pub use precision::Precision;
