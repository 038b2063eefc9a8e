//! Plugin side of a target: the [`TargetTable`] over a `Box<dyn Target>`.

use std::ffi::c_void;

use super::guard::{Held, destroy, put, put_text, slice, slice_mut, with, write};
use crate::Batch;
use crate::error::{Error, check_dim};
use crate::plugin::abi::{Sink, Status, TargetInfo, TargetTable};
use crate::target::Target;

type Obj = Box<dyn Target>;

pub(crate) static TABLE: TargetTable = TargetTable {
    size: size_of::<TargetTable>(),
    destroy: destroy::<Obj>,
    info,
    observable_names,
    known_means,
    test_set,
    log_prob,
    sample,
    observables,
};

pub(crate) fn handle(t: Obj) -> *mut c_void {
    Held::into_handle(t)
}

unsafe extern "C" fn info(obj: *const c_void, out: *mut TargetInfo, err: Sink) -> Status {
    unsafe {
        with(obj, err, |t: &Obj| {
            let log_z = t.log_z();
            let i = TargetInfo {
                dim: t.dim(),
                n_observables: t.observable_names().len(),
                has_grad: t.has_grad() as u8,
                has_sampler: t.has_sampler() as u8,
                has_log_z: log_z.is_some() as u8,
                log_z: log_z.unwrap_or(f64::NAN),
            };
            write(out, i)
        })
    }
}

unsafe extern "C" fn observable_names(obj: *const c_void, out: Sink, err: Sink) -> Status {
    unsafe {
        with(obj, err, |t: &Obj| {
            t.observable_names().iter().for_each(|n| put_text(out, n));
            Ok(())
        })
    }
}

unsafe extern "C" fn known_means(obj: *const c_void, out: Sink, err: Sink) -> Status {
    unsafe {
        with(obj, err, |t: &Obj| {
            t.known_means().iter().for_each(|(n, v)| put(out, n, &[*v]));
            Ok(())
        })
    }
}

unsafe extern "C" fn test_set(obj: *const c_void, out: Sink, err: Sink) -> Status {
    unsafe {
        with(obj, err, |t: &Obj| {
            if let Some(b) = t.test_set() {
                check_dim("test set rows", b.nrows(), t.dim())?;
                put(out, "", b.as_slice());
            }
            Ok(())
        })
    }
}

unsafe extern "C" fn log_prob(
    obj: *const c_void,
    x: *const f64,
    dim: usize,
    n: usize,
    out: *mut f64,
    grad: *mut f64,
    err: Sink,
) -> Status {
    unsafe {
        with(obj, err, |t: &Obj| {
            check_dim("target input rows", dim, t.dim())?;
            let xb = Batch::from_column_slice(dim, n, slice(x, dim * n)?);
            let out = slice_mut(out, n)?;
            if grad.is_null() {
                return t.log_prob_batch(&xb, out);
            }
            let mut g = Batch::zeros(dim, n);
            t.log_prob_grad_batch(&xb, out, &mut g)?;
            slice_mut(grad, dim * n)?.copy_from_slice(g.as_slice());
            Ok(())
        })
    }
}

unsafe extern "C" fn sample(obj: *const c_void, n: usize, seed: u64, stream: u64, out: *mut f64, err: Sink) -> Status {
    unsafe {
        with(obj, err, |t: &Obj| {
            let mut rng = crate::rng::stream(seed, stream);
            let b = t.sample(n, &mut rng)?;
            if b.shape() != (t.dim(), n) {
                return Err(Error::Dim(format!("sampler returned {:?}, expected {:?}", b.shape(), (t.dim(), n))));
            }
            slice_mut(out, t.dim() * n)?.copy_from_slice(b.as_slice());
            Ok(())
        })
    }
}

unsafe extern "C" fn observables(
    obj: *const c_void,
    x: *const f64,
    dim: usize,
    n: usize,
    out: *mut f64,
    err: Sink,
) -> Status {
    unsafe {
        with(obj, err, |t: &Obj| {
            check_dim("observable input rows", dim, t.dim())?;
            let m = t.observable_names().len();
            let x = slice(x, dim * n)?;
            let out = slice_mut(out, m * n)?;
            for j in 0..n {
                t.observables(&x[j * dim..(j + 1) * dim], &mut out[j * m..(j + 1) * m])?;
            }
            Ok(())
        })
    }
}
