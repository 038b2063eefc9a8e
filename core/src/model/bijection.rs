//! Bijections: one invertible layer of a flow, with vector–Jacobian products.
//!
//! A layer implements a small surface once for both directions — `dim`, its parameters, one
//! [`Bijection::pass`] and one [`Bijection::vjp`] taking a [`Direction`] — and gets
//! `forward`, `inverse` and a length-checked `set_params` as provided methods. Parameter-free
//! layers implement only `dim`, `pass` and `vjp`.

use std::any::Any;

use crate::Batch;
use crate::error::{Error, Result, check_dim};

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
    /// The pass's outputs, `dim x n`.
    pub out: Batch,
    /// `log|det J|` of the pass, one per column.
    pub log_det: Vec<f64>,
    /// What the backward step needs, when the pass was recorded.
    pub tape: Option<Tape>,
}

/// Which way a pass goes: `Forward` maps the base side `z` to the data side `x = F(z)`,
/// `Inverse` maps `x` back to `z`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// `x = F(z)`, with `log|det dF/dz|`.
    Forward,
    /// `z = F^-1(x)`, with `log|det dF^-1/dx|`.
    Inverse,
}

impl Direction {
    /// Both directions, forward first.
    pub const BOTH: [Direction; 2] = [Direction::Forward, Direction::Inverse];

    /// Whether this is the inverse direction.
    pub fn is_inverse(self) -> bool {
        self == Direction::Inverse
    }

    /// The other direction.
    pub fn opposite(self) -> Direction {
        if self.is_inverse() { Direction::Forward } else { Direction::Inverse }
    }

    /// `+1` forward, `-1` inverse: the sign a log-scale enters a pass's log-determinant with.
    pub fn sign(self) -> f64 {
        if self.is_inverse() { -1.0 } else { 1.0 }
    }
}

/// The cotangents a VJP starts from: of a pass's outputs (`out`, dim x n) and of its
/// log-determinants (`log_det`, n); when `params` is given the VJP ADDS the parameter
/// cotangent (summed over the batch) into it.
pub struct Cotangent<'a> {
    /// Cotangent of the pass's outputs.
    pub out: &'a Batch,
    /// Cotangent of the pass's log-determinants.
    pub log_det: &'a [f64],
    /// Where the parameter cotangent is accumulated, if wanted.
    pub params: Option<&'a mut [f64]>,
}

impl<'a> Cotangent<'a> {
    /// The cotangents of a pass's outputs and log-determinants, and the parameter accumulator.
    pub fn new(out: &'a Batch, log_det: &'a [f64], params: Option<&'a mut [f64]>) -> Self {
        Cotangent { out, log_det, params }
    }
}

/// [`Bijection::pass_with_score`] from the opposite pass: `s' = J_G^T score + grad log|det J_G|`
/// for the opposite pass `G` at the output, one VJP with cotangents `(score, 1)`. For layers
/// that override the provided method only in some directions.
pub fn score_by_opposite_pass<B: Bijection + ?Sized>(
    layer: &B,
    direction: Direction,
    input: &Batch,
    score: &Batch,
    record: bool,
) -> Result<(Pass, Batch)> {
    check_dim("score rows", score.nrows(), input.nrows())?;
    check_dim("score columns", score.ncols(), input.ncols())?;
    let pass = layer.pass(direction, input, record)?;
    let back = layer.pass(direction.opposite(), &pass.out, true)?;
    let tape = back.tape.ok_or_else(|| Error::Other("layer recorded no tape".into()))?;
    let ones = vec![1.0; input.ncols()];
    let score = layer.vjp(direction.opposite(), &tape, Cotangent::new(score, &ones, None))?;
    Ok((pass, score))
}

/// One invertible layer `x = F(z)` with parameters theta.
pub trait Bijection: Send + Sync {
    /// Dimension the layer acts on.
    fn dim(&self) -> usize;

    /// Number of trainable parameters.
    fn n_params(&self) -> usize {
        0
    }

    /// Current parameters (length `n_params`).
    fn params(&self) -> Vec<f64> {
        Vec::new()
    }

    /// Replaces the parameters; `set_params` has checked that `params.len() == n_params()`.
    fn load_params(&mut self, params: &[f64]) -> Result<()> {
        let _ = params;
        Ok(())
    }

    /// One pass in `direction` for each column, with its `log|det J|`; records a tape when
    /// `record` is set.
    fn pass(&self, direction: Direction, input: &Batch, record: bool) -> Result<Pass>;

    /// Backward step of a pass recorded in `direction`: the cotangent of the pass's input.
    fn vjp(&self, direction: Direction, tape: &Tape, g: Cotangent<'_>) -> Result<Batch>;

    /// A pass in `direction` that also carries a score (the fast path gradient's recursion):
    /// given `score = grad log r(input)` for a density `r` of the inputs, returns the pass and
    /// `grad log r'(out)` for the density `r'` the pass pushes `r` to,
    /// `J^-T (score - grad log|det J|)`.
    ///
    /// That is the VJP of the opposite pass at the output with cotangents `(score, 1)`, which
    /// is what this provided version computes, at the price of a second pass. Layers that can
    /// solve `J^T s' = score - grad log|det J|` from their own pass override it. The pass is
    /// recorded when `record` is set, exactly as [`Bijection::pass`] would record it.
    fn pass_with_score(
        &self,
        direction: Direction,
        input: &Batch,
        score: &Batch,
        record: bool,
    ) -> Result<(Pass, Batch)> {
        score_by_opposite_pass(self, direction, input, score, record)
    }

    /// Replaces the parameters (length `n_params`).
    fn set_params(&mut self, params: &[f64]) -> Result<()> {
        check_dim("layer parameters", params.len(), self.n_params())?;
        self.load_params(params)
    }

    /// `x = F(z)` for each column, with `log|det dF/dz|`.
    fn forward(&self, z: &Batch, record: bool) -> Result<Pass> {
        self.pass(Direction::Forward, z, record)
    }

    /// `z = F^-1(x)` for each column, with `log|det dF^-1/dx|`.
    fn inverse(&self, x: &Batch, record: bool) -> Result<Pass> {
        self.pass(Direction::Inverse, x, record)
    }
}
