//! A plugin's target behind the [`Target`] trait. Facts that cannot change (dimension, flags,
//! observable names, known means, test set) are read once at creation; every batched method is
//! one call across the boundary.

use std::ffi::c_void;
use std::sync::Arc;

use super::call::collected;
use super::{Library, table};
use crate::Batch;
use crate::error::{Error, Result, check_dim};
use crate::plugin::abi::{Object, TargetInfo, TargetTable};
use crate::rng::{Rng, child_seed};
use crate::target::Target;

/// A target created by a plugin library.
pub struct PluginTarget {
    obj: *mut c_void,
    table: *const TargetTable,
    info: TargetInfo,
    observable_names: Vec<String>,
    known_means: Vec<(String, f64)>,
    test_set: Option<Batch>,
    // Keeps the library open until the object is destroyed.
    lib: Arc<Library>,
}

// SAFETY: the handle is a plugin-side `Box<dyn Target>`, which is `Send + Sync`; the table and
// library are immutable while `lib` keeps the library open.
unsafe impl Send for PluginTarget {}
unsafe impl Sync for PluginTarget {}

impl PluginTarget {
    pub(crate) fn new(lib: Arc<Library>, obj: Object) -> Result<Self> {
        let table = unsafe { table::<TargetTable>(&lib, obj.table, "target")? };
        let mut t = PluginTarget {
            obj: obj.handle,
            table,
            info: TargetInfo::default(),
            observable_names: Vec::new(),
            known_means: Vec::new(),
            test_set: None,
            lib,
        };
        let (o, tb) = (t.obj as *const c_void, t.t());
        let mut info = TargetInfo::default();
        unsafe { tb.info(&t.lib.name, o, &mut info) }?;
        let names = collected(|out| unsafe { tb.observable_names(&t.lib.name, o, out) })?;
        let means = collected(|out| unsafe { tb.known_means(&t.lib.name, o, out) })?;
        let test = collected(|out| unsafe { tb.test_set(&t.lib.name, o, out) })?;
        check_dim("observable names", names.len(), info.n_observables)?;
        t.observable_names = names.into_iter().map(|(n, _)| n).collect();
        t.known_means = means.into_iter().filter_map(|(n, v)| v.first().map(|x| (n, *x))).collect();
        if let Some((_, v)) = test.into_iter().next() {
            if info.dim == 0 || v.len() % info.dim != 0 {
                return Err(Error::Dim(format!("test set of {} numbers for dimension {}", v.len(), info.dim)));
            }
            t.test_set = Some(Batch::from_vec(info.dim, v.len() / info.dim, v));
        }
        t.info = info;
        Ok(t)
    }

    fn t(&self) -> &TargetTable {
        // SAFETY: checked at creation; `lib` keeps it mapped for as long as `self` lives.
        unsafe { &*self.table }
    }

    fn eval(&self, x: &Batch, out: &mut [f64], grad: *mut f64) -> Result<()> {
        let (d, n) = x.shape();
        check_dim("sample dimension", d, self.info.dim)?;
        check_dim("output length", out.len(), n)?;
        let (o, tb) = (self.obj as *const c_void, self.t());
        unsafe { tb.log_prob(&self.lib.name, o, x.as_ptr(), d, n, out.as_mut_ptr(), grad) }
    }
}

impl Drop for PluginTarget {
    fn drop(&mut self) {
        unsafe { (self.t().destroy)(self.obj) }
    }
}

impl Target for PluginTarget {
    fn dim(&self) -> usize {
        self.info.dim
    }

    fn log_prob(&self, x: &[f64]) -> Result<f64> {
        let mut out = [0.0];
        self.eval(&Batch::from_column_slice(x.len(), 1, x), &mut out, std::ptr::null_mut())?;
        Ok(out[0])
    }

    fn has_grad(&self) -> bool {
        self.info.has_grad != 0
    }

    fn log_prob_grad(&self, x: &[f64], grad: &mut [f64]) -> Result<f64> {
        check_dim("gradient length", grad.len(), x.len())?;
        let mut out = [0.0];
        self.eval(&Batch::from_column_slice(x.len(), 1, x), &mut out, grad.as_mut_ptr())?;
        Ok(out[0])
    }

    fn log_prob_batch(&self, x: &Batch, out: &mut [f64]) -> Result<()> {
        self.eval(x, out, std::ptr::null_mut())
    }

    fn log_prob_grad_batch(&self, x: &Batch, out: &mut [f64], grad: &mut Batch) -> Result<()> {
        if grad.shape() != x.shape() {
            return Err(Error::Dim(format!("gradient {:?} for input {:?}", grad.shape(), x.shape())));
        }
        self.eval(x, out, grad.as_mut_ptr())
    }

    fn has_sampler(&self) -> bool {
        self.info.has_sampler != 0
    }

    fn sample(&self, n: usize, rng: &mut Rng) -> Result<Batch> {
        let seed = child_seed(rng);
        let mut b = Batch::zeros(self.info.dim, n);
        let (o, tb) = (self.obj as *const c_void, self.t());
        unsafe { tb.sample(&self.lib.name, o, n, seed, 0, b.as_mut_ptr()) }?;
        Ok(b)
    }

    fn log_z(&self) -> Option<f64> {
        (self.info.has_log_z != 0).then_some(self.info.log_z)
    }

    fn observable_names(&self) -> Vec<String> {
        self.observable_names.clone()
    }

    fn observables(&self, x: &[f64], out: &mut [f64]) -> Result<()> {
        check_dim("sample dimension", x.len(), self.info.dim)?;
        check_dim("observables length", out.len(), self.observable_names.len())?;
        let (o, tb) = (self.obj as *const c_void, self.t());
        unsafe { tb.observables(&self.lib.name, o, x.as_ptr(), x.len(), 1, out.as_mut_ptr()) }
    }

    fn known_means(&self) -> Vec<(String, f64)> {
        self.known_means.clone()
    }

    fn test_set(&self) -> Option<Batch> {
        self.test_set.clone()
    }
}
