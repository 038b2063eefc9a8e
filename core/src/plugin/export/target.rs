//! Plugin side of a target: the bodies of the [`TargetTable`] entries over a `Box<dyn Target>`.

use std::ffi::c_void;

use super::guard::{Held, put, put_text, slice, slice_mut, write};
use crate::Batch;
use crate::error::{Error, Result, check_dim};
use crate::model::target::Target;
use crate::plugin::abi::{Sink, TargetInfo, TargetTable};
use crate::plugin::tables::TargetExports;

type Obj = Box<dyn Target>;

pub(crate) static TABLE: TargetTable = TargetTable::exported::<Exported>();

pub(crate) fn handle(t: Obj) -> *mut c_void {
    Held::into_handle(t)
}

/// The target entries of every plugin.
struct Exported;

impl TargetExports for Exported {
    unsafe fn info(t: &Obj, out: *mut TargetInfo) -> Result<()> {
        let log_z = t.log_z();
        let i = TargetInfo {
            dim: t.dim(),
            n_observables: t.observable_names().len(),
            has_grad: t.has_grad() as u8,
            has_sampler: t.has_sampler() as u8,
            has_log_z: log_z.is_some() as u8,
            log_z: log_z.unwrap_or(f64::NAN),
        };
        // SAFETY: `out` is the host's writable `TargetInfo` (field contract).
        unsafe { write(out, i) }
    }

    unsafe fn observable_names(t: &Obj, out: Sink) -> Result<()> {
        t.observable_names().iter().for_each(|n| put_text(out, n));
        Ok(())
    }

    unsafe fn known_means(t: &Obj, out: Sink) -> Result<()> {
        t.known_means().iter().for_each(|(n, v)| put(out, n, &[*v]));
        Ok(())
    }

    unsafe fn test_set(t: &Obj, out: Sink) -> Result<()> {
        if let Some(b) = t.test_set() {
            check_dim("test set rows", b.nrows(), t.dim())?;
            put(out, "", b.as_slice());
        }
        Ok(())
    }

    unsafe fn log_prob(t: &Obj, x: *const f64, dim: usize, n: usize, out: *mut f64, grad: *mut f64) -> Result<()> {
        check_dim("target input rows", dim, t.dim())?;
        let len = checked_len(dim, n)?;
        // SAFETY: `x` holds `dim * n` numbers and `out` has room for `n` (field contract).
        let (x, out) = unsafe { (slice(x, len)?, slice_mut(out, n)?) };
        let xb = Batch::from_column_slice(dim, n, x);
        if grad.is_null() {
            return t.log_prob_batch(&xb, out);
        }
        let mut g = Batch::zeros(dim, n);
        t.log_prob_grad_batch(&xb, out, &mut g)?;
        // SAFETY: a non-null `grad` has room for `dim * n` numbers (field contract).
        unsafe { slice_mut(grad, len)? }.copy_from_slice(g.as_slice());
        Ok(())
    }

    unsafe fn sample(t: &Obj, n: usize, seed: u64, stream: u64, out: *mut f64) -> Result<()> {
        let len = checked_len(t.dim(), n)?;
        let mut rng = crate::rng::stream(seed, stream);
        let b = t.sample(n, &mut rng)?;
        if b.shape() != (t.dim(), n) {
            return Err(Error::Dim(format!("sampler returned {:?}, expected {:?}", b.shape(), (t.dim(), n))));
        }
        // SAFETY: `out` has room for `dim * n` numbers (field contract).
        unsafe { slice_mut(out, len)? }.copy_from_slice(b.as_slice());
        Ok(())
    }

    unsafe fn observables(t: &Obj, x: *const f64, dim: usize, n: usize, out: *mut f64) -> Result<()> {
        check_dim("observable input rows", dim, t.dim())?;
        let m = t.observable_names().len();
        // SAFETY: `x` holds `dim * n` numbers and `out` has room for `m * n` (field contract).
        let (x, out) = unsafe { (slice(x, checked_len(dim, n)?)?, slice_mut(out, checked_len(m, n)?)?) };
        for j in 0..n {
            t.observables(&x[j * dim..(j + 1) * dim], &mut out[j * m..(j + 1) * m])?;
        }
        Ok(())
    }
}

/// `rows * cols`, refused when it overflows (a slice that long cannot exist).
pub(crate) fn checked_len(rows: usize, cols: usize) -> Result<usize> {
    rows.checked_mul(cols).ok_or_else(|| Error::Dim(format!("{rows} x {cols} numbers overflow the address space")))
}
