//! Which coordinates each coupling conditions on (frozen) and which it transforms (active).
//!
//! - `halves`: coupling `k` freezes the first `floor(dim/2)` coordinates when `k` is even and
//!   the rest when `k` is odd.
//! - `checkerboard`: on an `L x L` lattice (site `(r, c)` is coordinate `r * L + c`), coupling `k`
//!   transforms the sites with `(r + c) % 2 == k % 2` and freezes the others.
//! - `random`: couplings `2j` and `2j + 1` share a split of the coordinates into a random half
//!   (frozen by `2j`) and its complement (frozen by `2j + 1`), drawn from the entry's seed and `j`.
//!   This is a fixed random permutation of the coordinates before each pair of half-masked
//!   couplings, applied through index lists instead of moving data; the same seed rebuilds the
//!   same splits.
//! - `none`: nothing is frozen and every coordinate is active. The conditioner has no inputs, so
//!   the transform's parameters are free, one set per coordinate: an element-wise layer (for
//!   `spline`, a monotone spline per coordinate, the marginal map of a product density).

use rand::seq::SliceRandom;
use serde::Deserialize;

use bootflow_core::{Error, Result, rng};

/// Random streams of mask draws start here, above the streams of weight initialisation.
const MASK_STREAM: u64 = 1 << 32;

/// Mask family of a RealNVP entry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MaskKind {
    /// Alternating first and second halves of the coordinates.
    #[default]
    Halves,
    /// Alternating colours of an `L x L` checkerboard.
    Checkerboard,
    /// Random halves drawn from the entry's seed, a complementary pair per two couplings.
    Random,
    /// Nothing frozen: an element-wise layer with free parameters.
    None,
}

/// Frozen and active coordinates of one coupling, each in increasing order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Split {
    /// Coordinates the conditioner reads, left unchanged.
    pub frozen: Vec<usize>,
    /// Coordinates the coupling transforms.
    pub active: Vec<usize>,
}

impl Split {
    fn swapped(&self) -> Split {
        Split { frozen: self.active.clone(), active: self.frozen.clone() }
    }
}

/// The splits of `couplings` consecutive couplings on `dim` coordinates.
pub fn splits(kind: MaskKind, dim: usize, lattice: Option<usize>, couplings: usize, seed: u64) -> Result<Vec<Split>> {
    if dim < 2 {
        return Err(Error::Config(format!("a coupling layer needs dimension >= 2, got {dim}")));
    }
    if lattice.is_some() && kind != MaskKind::Checkerboard {
        return Err(Error::Config("'lattice' is only used with mask = \"checkerboard\"".into()));
    }
    let out = match kind {
        MaskKind::Halves => {
            let first = Split { frozen: (0..dim / 2).collect(), active: (dim / 2..dim).collect() };
            alternate(first, couplings)
        }
        MaskKind::Checkerboard => {
            let l = lattice.ok_or_else(|| Error::Config("mask = \"checkerboard\" needs 'lattice' (side L)".into()))?;
            if l < 2 || l.checked_mul(l) != Some(dim) {
                return Err(Error::Config(format!("checkerboard lattice {l} x {l} does not match dimension {dim}")));
            }
            let (even, odd): (Vec<usize>, Vec<usize>) = (0..dim).partition(|&i| (i / l + i % l) % 2 == 0);
            alternate(Split { frozen: odd, active: even }, couplings)
        }
        MaskKind::None => vec![Split { frozen: Vec::new(), active: (0..dim).collect() }; couplings],
        MaskKind::Random => (0..couplings)
            .map(|k| {
                let split = random_split(dim, seed, (k / 2) as u64);
                if k % 2 == 0 { split } else { split.swapped() }
            })
            .collect(),
    };
    Ok(out)
}

fn alternate(first: Split, couplings: usize) -> Vec<Split> {
    let second = first.swapped();
    (0..couplings).map(|k| if k % 2 == 0 { first.clone() } else { second.clone() }).collect()
}

fn random_split(dim: usize, seed: u64, pair: u64) -> Split {
    let mut r = rng::stream(seed, MASK_STREAM + pair);
    let mut perm: Vec<usize> = (0..dim).collect();
    perm.shuffle(&mut r);
    let mut frozen = perm[..dim / 2].to_vec();
    let mut active = perm[dim / 2..].to_vec();
    frozen.sort_unstable();
    active.sort_unstable();
    Split { frozen, active }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_partition(s: &Split, dim: usize) -> bool {
        let mut all: Vec<usize> = s.frozen.iter().chain(&s.active).copied().collect();
        all.sort_unstable();
        all == (0..dim).collect::<Vec<_>>() && !s.frozen.is_empty() && !s.active.is_empty()
    }

    #[test]
    fn consecutive_couplings_transform_complementary_sets() {
        for (kind, dim, lat) in
            [(MaskKind::Halves, 5, None), (MaskKind::Checkerboard, 16, Some(4)), (MaskKind::Random, 9, None)]
        {
            let s = splits(kind, dim, lat, 4, 3).unwrap();
            for (k, split) in s.iter().enumerate() {
                assert!(is_partition(split, dim), "{kind:?} {k}: {split:?}");
            }
            assert_eq!(s[0].active, s[1].frozen);
            assert_eq!(s[2].active, s[3].frozen);
        }
    }

    #[test]
    fn checkerboard_neighbours_have_opposite_roles() {
        let s = &splits(MaskKind::Checkerboard, 16, Some(4), 1, 0).unwrap()[0];
        // Sites (0,0)=0 and (1,1)=5 are even, their neighbours (0,1)=1 and (1,0)=4 odd.
        assert!(s.active.contains(&0) && s.active.contains(&5));
        assert!(s.frozen.contains(&1) && s.frozen.contains(&4) && s.frozen.contains(&3));
    }

    #[test]
    fn random_splits_follow_the_seed() {
        let a = splits(MaskKind::Random, 16, None, 6, 11).unwrap();
        assert_eq!(a, splits(MaskKind::Random, 16, None, 6, 11).unwrap());
        assert_ne!(a, splits(MaskKind::Random, 16, None, 6, 12).unwrap());
        // A new split for each pair of couplings.
        assert_ne!(a[0], a[2]);
    }

    #[test]
    fn none_freezes_nothing() {
        for s in splits(MaskKind::None, 5, None, 3, 0).unwrap() {
            assert_eq!(s, Split { frozen: vec![], active: (0..5).collect() });
        }
    }

    #[test]
    fn rejects_bad_configs() {
        assert!(splits(MaskKind::Halves, 1, None, 2, 0).is_err());
        assert!(splits(MaskKind::Checkerboard, 16, None, 2, 0).is_err());
        assert!(splits(MaskKind::Checkerboard, 15, Some(4), 2, 0).is_err());
        assert!(splits(MaskKind::Halves, 16, Some(4), 2, 0).is_err());
    }
}
