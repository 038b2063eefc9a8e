//! A fixed permutation of the coordinates: `x_i = z_perm(i)`, `log|det| = 0`, no parameters.

use rand::seq::SliceRandom;
use serde::Deserialize;

use bootflow_core::check_dim;
use bootflow_core::{Batch, Bijection, Cotangent, Direction, Error, Pass, Result, Rng, Tape};

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

    /// Where each output row comes from in `direction`.
    fn source_rows(&self, direction: Direction) -> Vec<usize> {
        match direction {
            Direction::Forward => self.perm.clone(),
            Direction::Inverse => self.inverse_perm(),
        }
    }
}

impl Bijection for Permutation {
    fn dim(&self) -> usize {
        self.perm.len()
    }

    fn pass(&self, direction: Direction, input: &Batch, record: bool) -> Result<Pass> {
        check_dim("permutation input rows", input.nrows(), self.perm.len())?;
        let tape = record.then(|| Tape::new(input.ncols()));
        Ok(Pass { out: permute_rows(input, &self.source_rows(direction)), log_det: vec![0.0; input.ncols()], tape })
    }

    /// A permutation is orthogonal with log-determinant 0: the score is permuted like the input.
    fn pass_with_score(
        &self,
        direction: Direction,
        input: &Batch,
        score: &Batch,
        record: bool,
    ) -> Result<(Pass, Batch)> {
        check_dim("permutation score rows", score.nrows(), self.perm.len())?;
        check_dim("permutation score columns", score.ncols(), input.ncols())?;
        let pass = self.pass(direction, input, record)?;
        Ok((pass, permute_rows(score, &self.source_rows(direction))))
    }

    /// The transpose of a permutation is its inverse.
    fn vjp(&self, direction: Direction, tape: &Tape, g: Cotangent<'_>) -> Result<Batch> {
        let n = *tape.get::<usize>().ok_or_else(|| Error::Other("permutation given a foreign tape".into()))?;
        check_dim("permutation cotangent rows", g.out.nrows(), self.perm.len())?;
        check_dim("permutation cotangent columns", g.out.ncols(), n)?;
        Ok(permute_rows(g.out, &self.source_rows(direction.opposite())))
    }
}
