//! Fixed-size column shards processed in parallel. The shard size, never the thread count,
//! decides how work is split, so results are bit-identical for every number of threads.

use rayon::prelude::*;

use crate::Batch;
use crate::error::Result;

/// Largest default shard: large enough for efficient matrix products.
pub const DEFAULT_SHARD: usize = 256;

/// Smallest default shard: below it per-shard overheads outweigh the parallel gain.
pub const MIN_SHARD: usize = 64;

/// Default columns per shard for a batch of `n`: about a quarter of the batch, within
/// `MIN_SHARD..=DEFAULT_SHARD`, so that batches of 128 still keep two cores busy while large
/// batches keep 256-column products. It depends on `n` only, never on the thread count.
pub fn default_size(n: usize) -> usize {
    n.div_ceil(4).clamp(MIN_SHARD, DEFAULT_SHARD)
}

/// `(start, len)` of each shard of `n` columns.
pub fn ranges(n: usize, shard: usize) -> Vec<(usize, usize)> {
    let shard = shard.max(1);
    (0..n.div_ceil(shard)).map(|k| (k * shard, shard.min(n - k * shard))).collect()
}

/// Columns `start..start+len` of `b` as an owned batch.
pub fn columns(b: &Batch, (start, len): (usize, usize)) -> Batch {
    b.columns(start, len).into_owned()
}

/// Runs `f` on every shard in parallel and returns the results in shard order.
pub fn map<T: Send>(n: usize, shard: usize, f: impl Fn((usize, usize)) -> Result<T> + Sync) -> Result<Vec<T>> {
    ranges(n, shard).into_par_iter().map(&f).collect()
}

/// Writes shard batches back side by side into one `rows x n` batch.
pub fn concat_columns(
    rows: usize,
    n: usize,
    parts: &[(usize, usize)],
    blocks: impl IntoIterator<Item = Batch>,
) -> Batch {
    let mut out = Batch::zeros(rows, n);
    for (&(start, len), block) in parts.iter().zip(blocks) {
        out.columns_mut(start, len).copy_from(&block);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_size_splits_small_batches_and_caps_large_ones() {
        assert_eq!(default_size(1), MIN_SHARD);
        assert_eq!(ranges(128, default_size(128)).len(), 2);
        assert_eq!(default_size(512), 128);
        assert_eq!(default_size(1024), DEFAULT_SHARD);
        assert_eq!(ranges(4096, default_size(4096)).len(), 16);
    }
}
