//! Bijections: one invertible layer of a flow, with vector–Jacobian products.

use std::any::Any;

use crate::Batch;
use crate::error::Result;

/// Whatever a layer keeps from a pass (inputs, activations) to run that pass's backward step.
/// Opaque to callers; each implementation downcasts its own.
pub struct Tape(pub Box<dyn Any + Send + Sync>);

impl Tape {
    /// Wraps a layer's private record.
    pub fn new<T: Any + Send + Sync>(value: T) -> Self {
        Tape(Box::new(value))
    }

    /// The layer's record, if it is of type `T`.
    pub fn get<T: Any>(&self) -> Option<&T> {
        self.0.downcast_ref::<T>()
    }
}

/// Result of a pass through a layer: outputs (dim x n), `log|det J|` per column, and the tape
/// when one was asked for.
pub struct Pass {
    pub out: Batch,
    pub log_det: Vec<f64>,
    pub tape: Option<Tape>,
}

/// One invertible layer `x = F(z)` with parameters theta.
///
/// `forward` maps base side to data side with `log|det dF/dz|`; `inverse` maps back with
/// `log|det dF^-1/dx|`. A VJP takes the cotangents of a pass's outputs (`g_out`, dim x n) and of
/// its log-determinants (`g_log_det`, n) and returns the cotangent of the pass's input; when
/// `g_params` is given it also ADDS the parameter cotangent (summed over the batch) into it.
pub trait Bijection: Send + Sync {
    /// Dimension the layer acts on.
    fn dim(&self) -> usize;
    /// Number of trainable parameters.
    fn n_params(&self) -> usize;
    /// Current parameters (length `n_params`).
    fn params(&self) -> Vec<f64>;
    /// Replaces the parameters (length `n_params`).
    fn set_params(&mut self, params: &[f64]) -> Result<()>;

    /// `x = F(z)` for each column, with `log|det dF/dz|`.
    fn forward(&self, z: &Batch, record: bool) -> Result<Pass>;
    /// `z = F^-1(x)` for each column, with `log|det dF^-1/dx|`.
    fn inverse(&self, x: &Batch, record: bool) -> Result<Pass>;

    /// Backward step of a recorded forward pass.
    fn forward_vjp(&self, tape: &Tape, g_out: &Batch, g_log_det: &[f64], g_params: Option<&mut [f64]>)
    -> Result<Batch>;
    /// Backward step of a recorded inverse pass.
    fn inverse_vjp(&self, tape: &Tape, g_out: &Batch, g_log_det: &[f64], g_params: Option<&mut [f64]>)
    -> Result<Batch>;
}
