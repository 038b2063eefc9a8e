//! The network a coupling computes its transform's parameters with: dense ([`Mlp`], on the
//! frozen coordinates as a vector) or convolutional ([`Conv`], on the frozen sites of an
//! `L x L` periodic lattice, translation-equivariant). Both map the frozen rows to the
//! transform's raw rows and back, so the coupling does not know which one it has.

use serde::Deserialize;

use bootflow_core::{Batch, Error, Result, Rng};

use crate::conv::{Conv, ConvTape};
use crate::mlp::{Mlp, MlpTape};
use crate::precision::Precision;

/// Which conditioner a coupling entry uses (`conditioner = "mlp" | "conv"`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConditionerKind {
    /// Dense network on the frozen coordinates (`hidden`).
    #[default]
    Mlp,
    /// Periodic convolutions on the lattice (`channels`, `kernel`); checkerboard masks only.
    Conv,
}

/// A coupling's conditioner.
#[derive(Clone, Debug)]
pub enum Conditioner {
    /// Dense.
    Dense(Mlp),
    /// Convolutional.
    Conv(Conv),
}

/// A recorded conditioner pass.
pub enum ConditionerTape {
    /// Of a dense conditioner.
    Dense(MlpTape),
    /// Of a convolutional one.
    Conv(ConvTape),
}

/// The shape of a convolutional conditioner.
#[derive(Clone, Debug)]
pub struct ConvShape<'a> {
    /// Side `L` of the lattice.
    pub side: usize,
    /// Kernel size `k` (odd).
    pub kernel: usize,
    /// Hidden channels.
    pub channels: &'a [usize],
}

impl Conditioner {
    /// A convolutional conditioner reading the sites `frozen` and writing, for raw row `r`,
    /// output channel `c` at site `active[i]` where `raw_row(i, c) = r`.
    #[allow(clippy::too_many_arguments)]
    pub fn conv(
        shape: ConvShape<'_>,
        activation: crate::Activation,
        last_scale: f64,
        frozen: &[usize],
        active: &[usize],
        per_coordinate: usize,
        raw_row: impl Fn(usize, usize) -> usize,
        rng: &mut Rng,
    ) -> Self {
        let mut out_rows = vec![(0, 0); active.len() * per_coordinate];
        for (i, &site) in active.iter().enumerate() {
            for c in 0..per_coordinate {
                out_rows[raw_row(i, c)] = (site, c);
            }
        }
        let mut channels = shape.channels.to_vec();
        channels.push(per_coordinate);
        Conditioner::Conv(Conv::new(
            shape.side,
            shape.kernel,
            &channels,
            activation,
            last_scale,
            frozen,
            &out_rows,
            rng,
        ))
    }

    /// The same conditioner running its products in `precision`.
    pub fn with_precision(self, precision: Precision) -> Self {
        match self {
            Conditioner::Dense(m) => Conditioner::Dense(m.with_precision(precision)),
            Conditioner::Conv(c) => Conditioner::Conv(c.with_precision(precision)),
        }
    }

    /// Raw rows for the frozen rows `x`, and the tape when `record`.
    pub fn forward(&self, x: Batch, record: bool) -> (Batch, Option<ConditionerTape>) {
        match self {
            Conditioner::Dense(m) => {
                let (out, t) = m.forward(x, record);
                (out, t.map(ConditionerTape::Dense))
            }
            Conditioner::Conv(c) => {
                let (out, t) = c.forward(x, record);
                (out, t.map(ConditionerTape::Conv))
            }
        }
    }

    /// Cotangent of the frozen rows for the raw rows' cotangent `g_out`; adds the parameter
    /// cotangent into `g_params` when given.
    pub fn backward(&self, tape: &ConditionerTape, g_out: Batch, g_params: Option<&mut [f64]>) -> Result<Batch> {
        match (self, tape) {
            (Conditioner::Dense(m), ConditionerTape::Dense(t)) => Ok(m.backward(t, g_out, g_params)),
            (Conditioner::Conv(c), ConditionerTape::Conv(t)) => Ok(c.backward(t, g_out, g_params)),
            _ => Err(foreign()),
        }
    }

    /// Number of parameters.
    pub fn n_params(&self) -> usize {
        match self {
            Conditioner::Dense(m) => m.n_params(),
            Conditioner::Conv(c) => c.n_params(),
        }
    }

    /// The parameters.
    pub fn params(&self) -> &[f64] {
        match self {
            Conditioner::Dense(m) => m.params(),
            Conditioner::Conv(c) => c.params(),
        }
    }

    /// Replaces the parameters; the caller checks the length.
    pub fn set_params(&mut self, p: &[f64]) {
        match self {
            Conditioner::Dense(m) => m.set_params(p),
            Conditioner::Conv(c) => c.set_params(p),
        }
    }

    /// Smallest |pre-activation| of the hidden layers in a recorded pass.
    pub fn min_abs_pre_activation(&self, tape: &ConditionerTape) -> Result<f64> {
        match (self, tape) {
            (Conditioner::Dense(m), ConditionerTape::Dense(t)) => Ok(m.min_abs_pre_activation(t)),
            (Conditioner::Conv(c), ConditionerTape::Conv(t)) => Ok(c.min_abs_pre_activation(t)),
            _ => Err(foreign()),
        }
    }
}

/// A tape recorded by a conditioner of the other kind.
fn foreign() -> Error {
    Error::Other("coupling given a tape of another conditioner kind".into())
}
