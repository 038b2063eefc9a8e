//! Fixed-size column shards processed in parallel. The shard size, never the thread count,
//! decides how work is split, so results are bit-identical for every number of threads.

use rayon::prelude::*;

use crate::Batch;
use crate::error::Result;

/// Default columns per shard: large enough for efficient matrix products, small enough to
/// keep two cores busy at batch 512.
pub const DEFAULT_SHARD: usize = 256;

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
