//! ActNorm (Kingma & Dhariwal 2018): the element-wise affine map `x = z exp(s) + t` of core's
//! [`ElementwiseAffine`] (parameters `[s_1..s_d, t_1..t_d]`), initialised from data.
//!
//! The first non-empty batch the layer is handed, in either direction, sets the parameters so
//! that the pass's output has mean 0 and standard deviation 1 per coordinate on that batch
//! (forward: `exp(s) = 1/std(z)`, `t = -mean(z)/std(z)`; inverse: `t = mean(x)`,
//! `exp(s) = std(x)`; standard deviations are floored at 1e-6). From then on they are ordinary
//! parameters. Initialisation is not differentiated: the pass that performs it treats the new
//! parameters as constants.
//!
//! Being initialised is part of the layer's state, and `set_params` counts as initialisation:
//! a flow rebuilt from its config and given a checkpoint's parameters keeps them instead of
//! re-initialising on its next batch. In a sharded flow pass the first shard to arrive
//! initialises the layer; for reproducible runs keep the first batch within one shard.

use std::sync::RwLock;

use bootflow_core::ElementwiseAffine;
use bootflow_core::{Batch, Bijection, Cotangent, Direction, Error, Pass, Result, Tape};

/// Smallest standard deviation used by the data-dependent initialisation.
const MIN_STD: f64 = 1e-6;

struct State {
    affine: ElementwiseAffine,
    initialised: bool,
}

/// Element-wise affine layer with data-dependent initialisation.
pub struct ActNorm {
    dim: usize,
    state: RwLock<State>,
}

fn poisoned<T>(_: T) -> Error {
    Error::Other("actnorm state lock poisoned".into())
}

impl ActNorm {
    /// An uninitialised layer (the identity until its first batch).
    pub fn new(dim: usize) -> Self {
        Self { dim, state: RwLock::new(State { affine: ElementwiseAffine::new(dim), initialised: false }) }
    }

    /// Whether the parameters have been set, by data or by `set_params`.
    pub fn is_initialised(&self) -> Result<bool> {
        Ok(self.state.read().map_err(poisoned)?.initialised)
    }

    /// Initialises from `batch` (the input of a pass in the given direction) unless already done.
    fn ensure_initialised(&self, batch: &Batch, inverse: bool) -> Result<()> {
        if batch.ncols() == 0 || self.state.read().map_err(poisoned)?.initialised {
            return Ok(());
        }
        let mut st = self.state.write().map_err(poisoned)?;
        if st.initialised {
            return Ok(());
        }
        let n = batch.ncols() as f64;
        let (mut log_scale, mut shift) = (vec![0.0; self.dim], vec![0.0; self.dim]);
        for (i, row) in batch.row_iter().enumerate() {
            let mean = row.sum() / n;
            let var = row.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
            let std = var.sqrt().max(MIN_STD);
            if inverse {
                (log_scale[i], shift[i]) = (std.ln(), mean);
            } else {
                (log_scale[i], shift[i]) = (-std.ln(), -mean / std);
            }
        }
        *st = State { affine: ElementwiseAffine::with(log_scale, shift), initialised: true };
        Ok(())
    }
}

impl Bijection for ActNorm {
    fn dim(&self) -> usize {
        self.dim
    }

    fn n_params(&self) -> usize {
        2 * self.dim
    }

    fn params(&self) -> Vec<f64> {
        self.state.read().map(|s| s.affine.params()).unwrap_or_else(|_| vec![f64::NAN; 2 * self.dim])
    }

    fn load_params(&mut self, params: &[f64]) -> Result<()> {
        let st = self.state.get_mut().map_err(poisoned)?;
        st.affine.set_params(params)?;
        st.initialised = true;
        Ok(())
    }

    fn pass(&self, direction: Direction, input: &Batch, record: bool) -> Result<Pass> {
        self.ensure_initialised(input, direction.is_inverse())?;
        self.state.read().map_err(poisoned)?.affine.pass(direction, input, record)
    }

    fn pass_with_score(
        &self,
        direction: Direction,
        input: &Batch,
        score: &Batch,
        record: bool,
    ) -> Result<(Pass, Batch)> {
        self.ensure_initialised(input, direction.is_inverse())?;
        self.state.read().map_err(poisoned)?.affine.pass_with_score(direction, input, score, record)
    }

    fn vjp(&self, direction: Direction, tape: &Tape, g: Cotangent<'_>) -> Result<Batch> {
        self.state.read().map_err(poisoned)?.affine.vjp(direction, tape, g)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bootflow_core::{rng, testing};

    fn shifted_batch(n: usize) -> Batch {
        let mut r = rng::stream(1, 0);
        let mut b = testing::random_batch(3, n, &mut r);
        for (i, mut row) in b.row_iter_mut().enumerate() {
            row.iter_mut().for_each(|v| *v = 2.0 + (i as f64 + 0.5) * *v);
        }
        b
    }

    fn moments(b: &Batch) -> Vec<(f64, f64)> {
        let n = b.ncols() as f64;
        b.row_iter()
            .map(|r| {
                let m = r.sum() / n;
                (m, (r.iter().map(|v| (v - m).powi(2)).sum::<f64>() / n).sqrt())
            })
            .collect()
    }

    #[test]
    fn first_batch_gives_standardised_output_in_either_direction() {
        let x = shifted_batch(50);
        for inverse in [false, true] {
            let layer = ActNorm::new(3);
            assert!(!layer.is_initialised().unwrap());
            let out = if inverse { layer.inverse(&x, false) } else { layer.forward(&x, false) }.unwrap().out;
            for (m, s) in moments(&out) {
                assert!(m.abs() < 1e-12 && (s - 1.0).abs() < 1e-12, "{m} {s}");
            }
            // A second, different batch does not move the parameters.
            let p = layer.params();
            layer.forward(&shifted_batch(7), false).unwrap();
            assert_eq!(layer.params(), p);
        }
    }

    #[test]
    fn set_params_counts_as_initialisation() {
        let mut layer = ActNorm::new(3);
        let restored = vec![0.1, -0.2, 0.3, 1.0, 2.0, 3.0];
        layer.set_params(&restored).unwrap();
        layer.inverse(&shifted_batch(20), false).unwrap();
        assert_eq!(layer.params(), restored);
        // An empty batch does not initialise.
        let fresh = ActNorm::new(3);
        fresh.forward(&Batch::zeros(3, 0), false).unwrap();
        assert!(!fresh.is_initialised().unwrap());
    }
}
