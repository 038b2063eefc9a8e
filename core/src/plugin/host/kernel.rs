//! A plugin's MCMC kernel behind the [`Kernel`] trait. The host's log-density crosses as a C
//! callback; randomness as a seed drawn from the host's generator.

use std::ffi::c_void;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use super::call::collected;
use super::{Handle, Library};
use crate::Batch;
use crate::error::{Error, Result, check_dim};
use crate::model::kernel::{ChainState, Kernel, StepStats};
use crate::model::target::LogDensity;
use crate::plugin::abi::{ChainBuffers, DensityCallback, KernelTable, Object, Sink, Status, encode_error, status};
use crate::rng::{Rng, child_seed};

/// A kernel created by a plugin library.
pub struct PluginKernel {
    h: Handle<KernelTable>,
    needs_grad: bool,
    /// An error from a call whose trait method cannot return one (`set_adapt`), reported by the
    /// next `step`.
    fault: Option<Error>,
}

/// Evaluates the host density for a plugin: `ctx` is a `*const &dyn LogDensity`.
unsafe extern "C" fn eval_density(
    ctx: *const c_void,
    x: *const f64,
    dim: usize,
    n: usize,
    out: *mut f64,
    grad: *mut f64,
    err: Sink,
) -> Status {
    let run = || -> Result<()> {
        // SAFETY: `ctx` is the `&dyn LogDensity` that `step` passed, alive during the step.
        let density = unsafe { *(ctx as *const &dyn LogDensity) };
        check_dim("density input rows", dim, density.dim())?;
        if (x.is_null() || out.is_null()) && n > 0 {
            return Err(Error::Other("null density buffers".into()));
        }
        let xb = if n == 0 {
            Batch::zeros(dim, 0)
        } else {
            // SAFETY: checked non-null; the kernel passes `dim * n` readable numbers (callback contract).
            Batch::from_column_slice(dim, n, unsafe { std::slice::from_raw_parts(x, dim * n) })
        };
        // SAFETY: checked non-null; the kernel passes room for `n` numbers (callback contract).
        let out = if n == 0 { &mut [][..] } else { unsafe { std::slice::from_raw_parts_mut(out, n) } };
        if grad.is_null() {
            return density.eval(&xb, out, None);
        }
        let mut g = Batch::zeros(dim, n);
        density.eval(&xb, out, Some(&mut g))?;
        if n > 0 {
            // SAFETY: non-null; the kernel passes room for `dim * n` numbers (callback contract).
            unsafe { std::slice::from_raw_parts_mut(grad, dim * n) }.copy_from_slice(g.as_slice());
        }
        Ok(())
    };
    let (code, msg) = match catch_unwind(AssertUnwindSafe(run)) {
        Ok(Ok(())) => return status::OK,
        Ok(Err(e)) => encode_error(&e),
        Err(_) => (status::PANIC, "the host log-density panicked".to_string()),
    };
    // SAFETY: the plugin made `err` for this call; the text is borrowed only during `put`.
    unsafe { (err.put)(err.ctx, crate::plugin::abi::Str::new(&msg), std::ptr::null(), 0) };
    code
}

impl PluginKernel {
    pub(crate) fn new(lib: Arc<Library>, obj: Object) -> Result<Self> {
        let h = Handle::<KernelTable>::new(lib, obj)?;
        let mut needs = 0u8;
        // SAFETY: a live handle and a writable flag.
        unsafe { h.table().info(h.plugin(), h.shared(), &mut needs) }?;
        Ok(PluginKernel { h, needs_grad: needs != 0, fault: None })
    }
}

impl Kernel for PluginKernel {
    fn needs_grad(&self) -> bool {
        self.needs_grad
    }

    fn step(&mut self, density: &dyn LogDensity, state: &mut ChainState, rng: &mut Rng) -> Result<StepStats> {
        if let Some(e) = self.fault.take() {
            return Err(e);
        }
        let (d, n) = state.x.shape();
        check_dim("density dimension", density.dim(), d)?;
        check_dim("cached log-densities", state.log_p.len(), n)?;
        let grad = match state.grad.as_mut() {
            Some(g) if g.shape() == (d, n) => g.as_mut_ptr(),
            Some(g) => return Err(Error::Dim(format!("cached gradient {:?} for chains {:?}", g.shape(), (d, n)))),
            None if self.needs_grad => return Err(Error::Other("kernel needs gradients: chain state has none".into())),
            None => std::ptr::null_mut(),
        };
        let seed = child_seed(rng);
        let density_ref: &dyn LogDensity = density;
        let callback = DensityCallback {
            ctx: &density_ref as *const &dyn LogDensity as *const c_void,
            dim: d,
            eval: eval_density,
        };
        let mut accept_prob = vec![0.0; n];
        let mut accepted = vec![0u8; n];
        let chains = ChainBuffers {
            dim: d,
            n,
            x: state.x.as_mut_ptr(),
            log_p: state.log_p.as_mut_ptr(),
            grad,
            accept_prob: accept_prob.as_mut_ptr(),
            accepted: accepted.as_mut_ptr(),
        };
        let (o, tb) = (self.h.exclusive(), self.h.table());
        // SAFETY: a live, exclusively borrowed handle; the chain buffers hold `d x n` and `n` entries.
        unsafe { tb.step(self.h.plugin(), o, &callback, &chains, seed, 0) }?;
        Ok(StepStats { accept_prob, accepted: accepted.into_iter().map(|a| a != 0).collect() })
    }

    fn set_adapt(&mut self, on: bool) {
        let (o, tb) = (self.h.exclusive(), self.h.table());
        // SAFETY: a live, exclusively borrowed handle.
        if let Err(e) = unsafe { tb.set_adapt(self.h.plugin(), o, on as u8) } {
            self.fault = Some(e);
        }
    }

    /// Empty when the plugin fails to report (the trait method cannot return an error).
    fn tuning(&self) -> Vec<(String, f64)> {
        let (o, tb) = (self.h.shared(), self.h.table());
        // SAFETY: a live handle and a sink valid for the call.
        collected(|out| unsafe { tb.tuning(self.h.plugin(), o, out) })
            .map(|v| v.into_iter().filter_map(|(n, x)| x.first().map(|x| (n, *x))).collect())
            .unwrap_or_default()
    }

    /// Empty when the plugin fails to report; restoring it then fails with a clear error.
    fn state(&self) -> Vec<f64> {
        let (o, tb) = (self.h.shared(), self.h.table());
        // SAFETY: a live handle and a sink valid for the call.
        collected(|out| unsafe { tb.state(self.h.plugin(), o, out) })
            .map(|v| v.into_iter().flat_map(|(_, x)| x).collect())
            .unwrap_or_default()
    }

    fn set_state(&mut self, s: &[f64]) -> Result<()> {
        let (o, tb) = (self.h.exclusive(), self.h.table());
        // SAFETY: a live, exclusively borrowed handle and `s.len()` numbers.
        unsafe { tb.set_state(self.h.plugin(), o, s.as_ptr(), s.len()) }
    }

    fn boxed_clone(&self) -> Result<Box<dyn Kernel>> {
        let (o, tb) = (self.h.shared(), self.h.table());
        let mut copy: *mut c_void = std::ptr::null_mut();
        // SAFETY: a live handle and a writable out-pointer.
        unsafe { tb.clone(self.h.plugin(), o, &mut copy) }?;
        if copy.is_null() {
            return Err(Error::Plugin {
                plugin: self.h.plugin().to_string(),
                message: "kernel clone returned null".into(),
            });
        }
        Ok(Box::new(PluginKernel::new(self.h.lib().clone(), self.h.sibling(copy))?))
    }
}
