//! Plugin side of a kernel: the [`KernelTable`] over a `Box<dyn Kernel>`, and the host's
//! log-density callback seen as a [`LogDensity`].

use std::ffi::c_void;

use super::guard::{Held, destroy, put, slice, slice_mut, with, with_mut, write};
use crate::Batch;
use crate::error::{Error, Result, check_dim};
use crate::kernel::{ChainState, Kernel};
use crate::plugin::abi::{ChainBuffers, DensityCallback, KernelTable, Sink, Status, Str, decode_error, status};
use crate::target::LogDensity;

type Obj = Box<dyn Kernel>;

pub(crate) static TABLE: KernelTable = KernelTable {
    size: size_of::<KernelTable>(),
    destroy: destroy::<Obj>,
    info,
    step,
    set_adapt,
    tuning,
    state,
    set_state,
    clone,
};

pub(crate) fn handle(k: Obj) -> *mut c_void {
    Held::into_handle(k)
}

/// The host's log-density, called back through the C boundary.
struct HostDensity<'a>(&'a DensityCallback);

// SAFETY: the callback's context is the host's `&dyn LogDensity`, which is `Sync`.
unsafe impl Sync for HostDensity<'_> {}

unsafe extern "C" fn collect_text(ctx: *mut c_void, text: Str, _values: *const f64, _n: usize) {
    let s = unsafe { &mut *(ctx as *mut String) };
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
        let code = unsafe { (self.0.eval)(self.0.ctx, x.as_ptr(), d, n, out.as_mut_ptr(), grad_ptr, sink) };
        if code == status::OK { Ok(()) } else { Err(decode_error(code, msg, "host")) }
    }
}

unsafe extern "C" fn info(obj: *const c_void, needs_grad: *mut u8, err: Sink) -> Status {
    unsafe { with(obj, err, |k: &Obj| write(needs_grad, k.needs_grad() as u8)) }
}

unsafe extern "C" fn step(
    obj: *mut c_void,
    density: *const DensityCallback,
    chains: *const ChainBuffers,
    seed: u64,
    stream: u64,
    err: Sink,
) -> Status {
    unsafe {
        with_mut(obj, err, |k: &mut Obj| {
            if density.is_null() || chains.is_null() {
                return Err(Error::Other("null density or chain buffers".into()));
            }
            let (density, c) = (HostDensity(&*density), &*chains);
            let (d, n) = (c.dim, c.n);
            let x = Batch::from_column_slice(d, n, slice(c.x, d * n)?);
            let log_p = slice(c.log_p, n)?.to_vec();
            let grad =
                if c.grad.is_null() { None } else { Some(Batch::from_column_slice(d, n, slice(c.grad, d * n)?)) };
            let mut chain = ChainState { x, log_p, grad };
            let mut rng = crate::rng::stream(seed, stream);
            let stats = k.step(&density, &mut chain, &mut rng)?;
            check_dim("acceptance statistics", stats.accept_prob.len(), n)?;
            check_dim("acceptance flags", stats.accepted.len(), n)?;
            slice_mut(c.x, d * n)?.copy_from_slice(chain.x.as_slice());
            slice_mut(c.log_p, n)?.copy_from_slice(&chain.log_p);
            if let (Some(g), false) = (chain.grad, c.grad.is_null()) {
                slice_mut(c.grad, d * n)?.copy_from_slice(g.as_slice());
            }
            slice_mut(c.accept_prob, n)?.copy_from_slice(&stats.accept_prob);
            if n > 0 {
                if c.accepted.is_null() {
                    return Err(Error::Other("null acceptance flags".into()));
                }
                let flags = std::slice::from_raw_parts_mut(c.accepted, n);
                flags.iter_mut().zip(&stats.accepted).for_each(|(f, a)| *f = *a as u8);
            }
            Ok(())
        })
    }
}

unsafe extern "C" fn set_adapt(obj: *mut c_void, on: u8, err: Sink) -> Status {
    unsafe {
        with_mut(obj, err, |k: &mut Obj| {
            k.set_adapt(on != 0);
            Ok(())
        })
    }
}

unsafe extern "C" fn tuning(obj: *const c_void, out: Sink, err: Sink) -> Status {
    unsafe {
        with(obj, err, |k: &Obj| {
            k.tuning().iter().for_each(|(name, v)| put(out, name, &[*v]));
            Ok(())
        })
    }
}

unsafe extern "C" fn state(obj: *const c_void, out: Sink, err: Sink) -> Status {
    unsafe {
        with(obj, err, |k: &Obj| {
            put(out, "", &k.state());
            Ok(())
        })
    }
}

unsafe extern "C" fn set_state(obj: *mut c_void, s: *const f64, len: usize, err: Sink) -> Status {
    unsafe { with_mut(obj, err, |k: &mut Obj| k.set_state(slice(s, len)?)) }
}

unsafe extern "C" fn clone(obj: *const c_void, out: *mut *mut c_void, err: Sink) -> Status {
    unsafe { with(obj, err, |k: &Obj| write(out, handle(k.boxed_clone()?))) }
}
