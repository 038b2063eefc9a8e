//! A fixed permutation of the coordinates: `x_i = z_perm(i)`, `log|det| = 0`, no parameters.

use rand::seq::SliceRandom;
use serde::Deserialize;

use bootflow_core::error::check_dim;
use bootflow_core::{Batch, Bijection, Error, Pass, Result, Rng, Tape};

/// Which permutation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PermutationKind {
    /// Uniformly random, drawn from the entry's seed.
    #[default]
    Random,
    /// `x_i = z_(d-1-i)`.
    Reverse,
}

/// Permutation layer.
#[derive(Clone, Debug)]
pub struct Permutation {
    perm: Vec<usize>,
}

/// Moves rows: `out[i] = input[from[i]]`, column by column.
fn permute_rows(input: &Batch, from: &[usize]) -> Batch {
    let d = from.len();
    let mut out = Batch::zeros(d, input.ncols());
    for (o, c) in out.as_mut_slice().chunks_exact_mut(d).zip(input.as_slice().chunks_exact(d)) {
        o.iter_mut().zip(from).for_each(|(v, &i)| *v = c[i]);
    }
    out
}

impl Permutation {
    pub fn new(kind: PermutationKind, dim: usize, rng: &mut Rng) -> Result<Self> {
        if dim == 0 {
            return Err(Error::Config("a permutation needs dimension >= 1".into()));
        }
        let mut perm: Vec<usize> = (0..dim).collect();
        match kind {
            PermutationKind::Random => perm.shuffle(rng),
            PermutationKind::Reverse => perm.reverse(),
        }
        Ok(Self { perm })
    }

    /// `perm[i]` is the base coordinate that becomes data coordinate `i`.
    pub fn perm(&self) -> &[usize] {
        &self.perm
    }

    fn inverse_perm(&self) -> Vec<usize> {
        let mut inv = vec![0; self.perm.len()];
        self.perm.iter().enumerate().for_each(|(i, &p)| inv[p] = i);
        inv
    }

    fn pass(&self, input: &Batch, record: bool, from: &[usize]) -> Result<Pass> {
        check_dim("permutation input rows", input.nrows(), self.perm.len())?;
        let tape = record.then(|| Tape::new(input.ncols()));
        Ok(Pass { out: permute_rows(input, from), log_det: vec![0.0; input.ncols()], tape })
    }

    fn vjp(&self, tape: &Tape, g_out: &Batch, from: &[usize]) -> Result<Batch> {
        let n = *tape.get::<usize>().ok_or_else(|| Error::Other("permutation given a foreign tape".into()))?;
        check_dim("permutation cotangent rows", g_out.nrows(), self.perm.len())?;
        check_dim("permutation cotangent columns", g_out.ncols(), n)?;
        Ok(permute_rows(g_out, from))
    }
}

impl Bijection for Permutation {
    fn dim(&self) -> usize {
        self.perm.len()
    }

    fn n_params(&self) -> usize {
        0
    }

    fn params(&self) -> Vec<f64> {
        Vec::new()
    }

    fn set_params(&mut self, params: &[f64]) -> Result<()> {
        check_dim("permutation parameters", params.len(), 0)
    }

    fn forward(&self, z: &Batch, record: bool) -> Result<Pass> {
        self.pass(z, record, &self.perm)
    }

    fn inverse(&self, x: &Batch, record: bool) -> Result<Pass> {
        self.pass(x, record, &self.inverse_perm())
    }

    // The transpose of a permutation is its inverse.
    fn forward_vjp(&self, tape: &Tape, g_out: &Batch, _g_ld: &[f64], _g_params: Option<&mut [f64]>) -> Result<Batch> {
        self.vjp(tape, g_out, &self.inverse_perm())
    }

    fn inverse_vjp(&self, tape: &Tape, g_out: &Batch, _g_ld: &[f64], _g_params: Option<&mut [f64]>) -> Result<Batch> {
        self.vjp(tape, g_out, &self.perm)
    }
}
