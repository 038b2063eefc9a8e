//! Plugin side of a kernel: the [`KernelTable`] over a `Box<dyn Kernel>`, and the host's
//! log-density callback seen as a [`LogDensity`].

use std::ffi::c_void;

use super::guard::{Held, put, slice, slice_mut, write};
use super::target::checked_len;
use crate::Batch;
use crate::error::{Error, Result, check_dim};
use crate::model::kernel::{ChainState, Kernel};
use crate::model::target::LogDensity;
use crate::plugin::abi::{ChainBuffers, DensityCallback, KernelTable, Sink, Str, decode_error, status};
use crate::plugin::tables::KernelExports;

type Obj = Box<dyn Kernel>;

pub(crate) static TABLE: KernelTable = KernelTable::exported::<Exported>();

pub(crate) fn handle(k: Obj) -> *mut c_void {
    Held::into_handle(k)
}

/// The host's log-density, called back through the C boundary.
struct HostDensity<'a>(&'a DensityCallback);

// SAFETY: the callback's context is the host's `&dyn LogDensity`, which is `Sync`.
unsafe impl Sync for HostDensity<'_> {}

unsafe extern "C" fn collect_text(ctx: *mut c_void, text: Str, _values: *const f64, _n: usize) {
    // SAFETY: `ctx` is the `String` of `HostDensity::eval`, borrowed for the call.
    let s = unsafe { &mut *(ctx as *mut String) };
    // SAFETY: the host passes text valid for the call.
    s.push_str(&unsafe { text.to_string_lossy() });
}

impl LogDensity for HostDensity<'_> {
    fn dim(&self) -> usize {
        self.0.dim
    }

    fn eval(&self, x: &Batch, out: &mut [f64], grad: Option<&mut Batch>) -> Result<()> {
        let (d, n) = x.shape();
        check_dim("density input rows", d, self.0.dim)?;
        check_dim("density output length", out.len(), n)?;
        let grad_ptr = match grad {
            Some(g) => {
                check_dim("density gradient columns", g.ncols(), n)?;
                check_dim("density gradient rows", g.nrows(), d)?;
                g.as_mut_ptr()
            }
            None => std::ptr::null_mut(),
        };
        let mut msg = String::new();
        let sink = Sink { ctx: &mut msg as *mut String as *mut c_void, put: collect_text };
        // SAFETY: the buffers were checked against `dim x n` above; the callback and its context
        // are valid for the `step` call this evaluation happens in.
        let code = unsafe { (self.0.eval)(self.0.ctx, x.as_ptr(), d, n, out.as_mut_ptr(), grad_ptr, sink) };
        if code == status::OK { Ok(()) } else { Err(decode_error(code, msg, "host")) }
    }
}

/// The kernel entries of every plugin.
struct Exported;

impl KernelExports for Exported {
    unsafe fn info(k: &Obj, needs_grad: *mut u8) -> Result<()> {
        // SAFETY: `needs_grad` is writable (field contract).
        unsafe { write(needs_grad, k.needs_grad() as u8) }
    }

    unsafe fn step(
        k: &mut Obj,
        density: *const DensityCallback,
        chains: *const ChainBuffers,
        seed: u64,
        stream: u64,
    ) -> Result<()> {
        if density.is_null() || chains.is_null() {
            return Err(Error::Other("null density or chain buffers".into()));
        }
        // SAFETY: non-null, both point to the host's structures, valid during the call.
        let (density, c) = unsafe { (HostDensity(&*density), &*chains) };
        let (d, n) = (c.dim, c.n);
        let len = checked_len(d, n)?;
        // Every output buffer is checked before the kernel runs, so that a failed check leaves
        // the chains as they were (the table's promise).
        let missing = |p: bool| n > 0 && p;
        if missing(c.x.is_null())
            || missing(c.log_p.is_null())
            || missing(c.accept_prob.is_null())
            || missing(c.accepted.is_null())
        {
            return Err(Error::Other("null chain buffer".into()));
        }
        // SAFETY: the buffers hold `dim * n` and `n` numbers (field contract), checked non-null.
        let (x, log_p) = unsafe { (slice(c.x, len)?, slice(c.log_p, n)?) };
        let x = Batch::from_column_slice(d, n, x);
        let log_p = log_p.to_vec();
        let grad = if c.grad.is_null() {
            None
        } else {
            // SAFETY: non-null; the buffer holds `dim * n` numbers (field contract).
            Some(Batch::from_column_slice(d, n, unsafe { slice(c.grad, len)? }))
        };
        let mut chain = ChainState { x, log_p, grad };
        let mut rng = crate::rng::stream(seed, stream);
        let stats = k.step(&density, &mut chain, &mut rng)?;
        check_dim("acceptance statistics", stats.accept_prob.len(), n)?;
        check_dim("acceptance flags", stats.accepted.len(), n)?;
        // SAFETY: every buffer was checked above; lengths are the field contract's.
        unsafe {
            slice_mut(c.x, len)?.copy_from_slice(chain.x.as_slice());
            slice_mut(c.log_p, n)?.copy_from_slice(&chain.log_p);
            if let (Some(g), false) = (chain.grad, c.grad.is_null()) {
                slice_mut(c.grad, len)?.copy_from_slice(g.as_slice());
            }
            slice_mut(c.accept_prob, n)?.copy_from_slice(&stats.accept_prob);
            if n > 0 {
                let flags = std::slice::from_raw_parts_mut(c.accepted, n);
                flags.iter_mut().zip(&stats.accepted).for_each(|(f, a)| *f = *a as u8);
            }
        }
        Ok(())
    }

    unsafe fn set_adapt(k: &mut Obj, on: u8) -> Result<()> {
        k.set_adapt(on != 0);
        Ok(())
    }

    unsafe fn tuning(k: &Obj, out: Sink) -> Result<()> {
        k.tuning().iter().for_each(|(name, v)| put(out, name, &[*v]));
        Ok(())
    }

    unsafe fn state(k: &Obj, out: Sink) -> Result<()> {
        put(out, "", &k.state());
        Ok(())
    }

    unsafe fn set_state(k: &mut Obj, s: *const f64, len: usize) -> Result<()> {
        // SAFETY: `s` holds `len` numbers (field contract).
        k.set_state(unsafe { slice(s, len)? })
    }

    unsafe fn clone(k: &Obj, out: *mut *mut c_void) -> Result<()> {
        // SAFETY: `out` is writable (field contract).
        unsafe { write(out, handle(k.boxed_clone()?)) }
    }
}
