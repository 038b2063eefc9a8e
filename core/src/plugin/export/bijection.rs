//! Plugin side of a bijection: the bodies of the [`BijectionTable`] entries over a
//! `Box<dyn Bijection>`. Tapes leave the plugin as `Box<Tape>` raw pointers and come back only
//! to `vjp` and `free_tape`.

use std::ffi::c_void;
use std::panic::{AssertUnwindSafe, catch_unwind};

use super::guard::{Held, slice, slice_mut, write};
use super::target::checked_len;
use crate::Batch;
use crate::error::{Error, Result, check_dim};
use crate::model::bijection::{Bijection, Cotangent, Direction, Pass, Tape};
use crate::plugin::abi::{BijectionInfo, BijectionTable};
use crate::plugin::tables::BijectionExports;

type Obj = Box<dyn Bijection>;

pub(crate) static TABLE: BijectionTable = BijectionTable::exported::<Exported>(free_tape);

pub(crate) fn handle(b: Obj) -> *mut c_void {
    Held::into_handle(b)
}

/// The direction of the ABI's `inverse` flag.
fn direction(inverse: u8) -> Direction {
    if inverse != 0 { Direction::Inverse } else { Direction::Forward }
}

/// The bijection entries of every plugin.
struct Exported;

impl BijectionExports for Exported {
    unsafe fn info(b: &Obj, out: *mut BijectionInfo) -> Result<()> {
        // SAFETY: `out` is the host's writable `BijectionInfo` (field contract).
        unsafe { write(out, BijectionInfo { dim: b.dim(), n_params: b.n_params() }) }
    }

    unsafe fn params(b: &Obj, out: *mut f64, len: usize) -> Result<()> {
        let p = b.params();
        check_dim("parameter buffer", len, p.len())?;
        // SAFETY: `out` has room for `len` numbers (field contract).
        unsafe { slice_mut(out, len)? }.copy_from_slice(&p);
        Ok(())
    }

    unsafe fn set_params(b: &mut Obj, p: *const f64, len: usize) -> Result<()> {
        // SAFETY: `p` holds `len` numbers (field contract).
        b.set_params(unsafe { slice(p, len)? })
    }

    unsafe fn pass(
        b: &Obj,
        inverse: u8,
        input: *const f64,
        dim: usize,
        n: usize,
        record: u8,
        out: *mut f64,
        log_det: *mut f64,
        tape: *mut *mut c_void,
    ) -> Result<()> {
        check_dim("bijection input rows", dim, b.dim())?;
        let len = checked_len(dim, n)?;
        // SAFETY: `input` holds `dim * n` numbers (field contract).
        let input = Batch::from_column_slice(dim, n, unsafe { slice(input, len)? });
        let p = b.pass(direction(inverse), &input, record != 0)?;
        // SAFETY: forwarded from this function's contract.
        unsafe { hand_over(p, record != 0, dim, n, out, log_det, tape) }
    }

    unsafe fn score_pass(
        b: &Obj,
        inverse: u8,
        input: *const f64,
        score: *const f64,
        dim: usize,
        n: usize,
        record: u8,
        out: *mut f64,
        log_det: *mut f64,
        score_out: *mut f64,
        tape: *mut *mut c_void,
    ) -> Result<()> {
        check_dim("bijection input rows", dim, b.dim())?;
        let len = checked_len(dim, n)?;
        // SAFETY: `input` and `score` hold `dim * n` numbers each (field contract).
        let (input, score) = unsafe {
            (Batch::from_column_slice(dim, n, slice(input, len)?), Batch::from_column_slice(dim, n, slice(score, len)?))
        };
        let (p, s) = b.pass_with_score(direction(inverse), &input, &score, record != 0)?;
        check_dim("layer score columns", s.ncols(), n)?;
        check_dim("layer score rows", s.nrows(), dim)?;
        // SAFETY: `score_out` has room for `dim * n` numbers (field contract).
        unsafe { slice_mut(score_out, len)? }.copy_from_slice(s.as_slice());
        // SAFETY: forwarded from this function's contract.
        unsafe { hand_over(p, record != 0, dim, n, out, log_det, tape) }
    }

    unsafe fn vjp(
        b: &Obj,
        inverse: u8,
        tape: *const c_void,
        g_out: *const f64,
        dim: usize,
        n: usize,
        g_log_det: *const f64,
        g_params: *mut f64,
        n_params: usize,
        g_in: *mut f64,
    ) -> Result<()> {
        check_dim("bijection cotangent rows", dim, b.dim())?;
        if tape.is_null() {
            return Err(Error::Other("null tape".into()));
        }
        let len = checked_len(dim, n)?;
        // SAFETY: a non-null tape is one this object's `pass` returned (field contract).
        let tape = unsafe { &*(tape as *const Tape) };
        // SAFETY: `g_out` and `g_log_det` hold `dim * n` and `n` numbers (field contract).
        let (g_out, g_ld) = unsafe { (Batch::from_column_slice(dim, n, slice(g_out, len)?), slice(g_log_det, n)?) };
        let gp = if g_params.is_null() {
            None
        } else {
            check_dim("parameter cotangent length", n_params, b.n_params())?;
            // SAFETY: a non-null `g_params` has room for `n_params` numbers (field contract).
            Some(unsafe { slice_mut(g_params, n_params)? })
        };
        let g = b.vjp(direction(inverse), tape, Cotangent { out: &g_out, log_det: g_ld, params: gp })?;
        check_dim("input cotangent columns", g.ncols(), n)?;
        // SAFETY: `g_in` has room for `dim * n` numbers (field contract).
        unsafe { slice_mut(g_in, len)? }.copy_from_slice(g.as_slice());
        Ok(())
    }
}

/// Writes a pass's outputs and log-determinants to the host's buffers and, when recorded, hands
/// over its tape.
///
/// # Safety
/// `out` and `log_det` have room for `dim * n` and `n` numbers; `tape` is writable when
/// `record` is set.
unsafe fn hand_over(
    p: Pass,
    record: bool,
    dim: usize,
    n: usize,
    out: *mut f64,
    log_det: *mut f64,
    tape: *mut *mut c_void,
) -> Result<()> {
    if p.out.shape() != (dim, n) || p.log_det.len() != n {
        return Err(Error::Dim(format!("layer returned output {:?} with {} log-dets", p.out.shape(), n)));
    }
    let t = match (record, p.tape) {
        (true, None) => return Err(Error::Other("layer recorded no tape".into())),
        (true, Some(t)) => Some(t),
        (false, _) => None,
    };
    let len = dim * n;
    // SAFETY: `out` and `log_det` have room for `dim * n` and `n` numbers (this function's contract).
    unsafe {
        slice_mut(out, len)?.copy_from_slice(p.out.as_slice());
        slice_mut(log_det, n)?.copy_from_slice(&p.log_det);
    }
    if let Some(t) = t {
        // SAFETY: `tape` is writable when `record` is set (this function's contract).
        unsafe { write(tape, Box::into_raw(Box::new(t)) as *mut c_void)? };
    }
    Ok(())
}

unsafe extern "C" fn free_tape(tape: *mut c_void) {
    super::guard::install_quiet_hook();
    if !tape.is_null() {
        // SAFETY: a non-null tape is a `Box<Tape>` made by `pass`, freed only here, once.
        let boxed = unsafe { Box::from_raw(tape as *mut Tape) };
        let _ = catch_unwind(AssertUnwindSafe(move || drop(boxed)));
    }
}
