//! Plugin side of a bijection: the [`BijectionTable`] over a `Box<dyn Bijection>`. Tapes leave
//! the plugin as `Box<Tape>` raw pointers and come back only to `vjp` and `free_tape`.

use std::ffi::c_void;
use std::panic::{AssertUnwindSafe, catch_unwind};

use super::guard::{Held, destroy, slice, slice_mut, with, with_mut, write};
use crate::Batch;
use crate::bijection::{Bijection, Cotangent, Direction, Tape};
use crate::error::{Error, check_dim};
use crate::plugin::abi::{BijectionInfo, BijectionTable, Sink, Status};

type Obj = Box<dyn Bijection>;

pub(crate) static TABLE: BijectionTable = BijectionTable {
    size: size_of::<BijectionTable>(),
    destroy: destroy::<Obj>,
    info,
    params,
    set_params,
    pass,
    vjp,
    free_tape,
};

/// The direction of the ABI's `inverse` flag.
fn direction(inverse: u8) -> Direction {
    if inverse != 0 { Direction::Inverse } else { Direction::Forward }
}

pub(crate) fn handle(b: Obj) -> *mut c_void {
    Held::into_handle(b)
}

unsafe extern "C" fn info(obj: *const c_void, out: *mut BijectionInfo, err: Sink) -> Status {
    unsafe { with(obj, err, |b: &Obj| write(out, BijectionInfo { dim: b.dim(), n_params: b.n_params() })) }
}

unsafe extern "C" fn params(obj: *const c_void, out: *mut f64, len: usize, err: Sink) -> Status {
    unsafe {
        with(obj, err, |b: &Obj| {
            let p = b.params();
            check_dim("parameter buffer", len, p.len())?;
            slice_mut(out, len)?.copy_from_slice(&p);
            Ok(())
        })
    }
}

unsafe extern "C" fn set_params(obj: *mut c_void, p: *const f64, len: usize, err: Sink) -> Status {
    unsafe { with_mut(obj, err, |b: &mut Obj| b.set_params(slice(p, len)?)) }
}

#[allow(clippy::too_many_arguments)]
unsafe extern "C" fn pass(
    obj: *const c_void,
    inverse: u8,
    input: *const f64,
    dim: usize,
    n: usize,
    record: u8,
    out: *mut f64,
    log_det: *mut f64,
    tape: *mut *mut c_void,
    err: Sink,
) -> Status {
    unsafe {
        with(obj, err, |b: &Obj| {
            check_dim("bijection input rows", dim, b.dim())?;
            let input = Batch::from_column_slice(dim, n, slice(input, dim * n)?);
            let record = record != 0;
            let p = b.pass(direction(inverse), &input, record)?;
            if p.out.shape() != (dim, n) || p.log_det.len() != n {
                return Err(Error::Dim(format!("layer returned output {:?} with {} log-dets", p.out.shape(), n)));
            }
            slice_mut(out, dim * n)?.copy_from_slice(p.out.as_slice());
            slice_mut(log_det, n)?.copy_from_slice(&p.log_det);
            if record {
                let t = p.tape.ok_or_else(|| Error::Other("layer recorded no tape".into()))?;
                write(tape, Box::into_raw(Box::new(t)) as *mut c_void)?;
            }
            Ok(())
        })
    }
}

#[allow(clippy::too_many_arguments)]
unsafe extern "C" fn vjp(
    obj: *const c_void,
    inverse: u8,
    tape: *const c_void,
    g_out: *const f64,
    dim: usize,
    n: usize,
    g_log_det: *const f64,
    g_params: *mut f64,
    n_params: usize,
    g_in: *mut f64,
    err: Sink,
) -> Status {
    unsafe {
        with(obj, err, |b: &Obj| {
            check_dim("bijection cotangent rows", dim, b.dim())?;
            if tape.is_null() {
                return Err(Error::Other("null tape".into()));
            }
            let tape = &*(tape as *const Tape);
            let g_out = Batch::from_column_slice(dim, n, slice(g_out, dim * n)?);
            let g_ld = slice(g_log_det, n)?;
            let gp = if g_params.is_null() {
                None
            } else {
                check_dim("parameter cotangent length", n_params, b.n_params())?;
                Some(slice_mut(g_params, n_params)?)
            };
            let g = b.vjp(direction(inverse), tape, Cotangent { out: &g_out, log_det: g_ld, params: gp })?;
            check_dim("input cotangent columns", g.ncols(), n)?;
            slice_mut(g_in, dim * n)?.copy_from_slice(g.as_slice());
            Ok(())
        })
    }
}

unsafe extern "C" fn free_tape(tape: *mut c_void) {
    super::guard::install_quiet_hook();
    if !tape.is_null() {
        let boxed = unsafe { Box::from_raw(tape as *mut Tape) };
        let _ = catch_unwind(AssertUnwindSafe(move || drop(boxed)));
    }
}
