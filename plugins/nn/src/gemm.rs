//! Strided matrix products for the conditioner, in the scalar type of the pass. Products with
//! `W^T` and `X^T` read the stored matrices in place, and small shapes (a 1-wide input, a 2-row
//! output) use the same packed kernel as large ones.

use crate::real::Real;

/// Strides `(row, column)` of a matrix in a slice.
pub(crate) type Strides = (usize, usize);

/// Strides of a stored column-major matrix with `rows` rows.
pub(crate) fn plain(rows: usize) -> Strides {
    (1, rows)
}

/// Strides of the transpose of a stored column-major matrix with `rows` rows.
pub(crate) fn transposed(rows: usize) -> Strides {
    (rows, 1)
}

/// Whether every element of an `m x k` matrix with strides `s` lies inside `len` elements.
fn fits(m: usize, k: usize, s: Strides, len: usize) -> bool {
    m == 0 || k == 0 || (m - 1) * s.0 + (k - 1) * s.1 < len
}

/// `C = A B + beta C` for `A` (`m x k`) and `B` (`k x n`) given by strides, and `C` a contiguous
/// column-major `m x n` matrix.
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm<T: Real>(
    m: usize,
    k: usize,
    n: usize,
    a: &[T],
    sa: Strides,
    b: &[T],
    sb: Strides,
    beta: T,
    c: &mut [T],
) {
    assert!(fits(m, k, sa, a.len()) && fits(k, n, sb, b.len()) && c.len() == m * n, "gemm shapes");
    // SAFETY: the assertion keeps every element matrixmultiply addresses inside its slice; `c`
    // is borrowed mutably and so aliases neither input.
    unsafe {
        T::gemm_raw(
            m,
            k,
            n,
            T::ONE,
            a.as_ptr(),
            sa.0 as isize,
            sa.1 as isize,
            b.as_ptr(),
            sb.0 as isize,
            sb.1 as isize,
            beta,
            c.as_mut_ptr(),
            1,
            m as isize,
        );
    }
}
