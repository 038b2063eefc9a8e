//! A plugin's target behind the [`Target`] trait. Facts that cannot change (dimension, flags,
//! observable names, known means, test set) are read once at creation; every batched method is
//! one call across the boundary.
//!
//! Every `unsafe` call below passes this object's live handle and buffers of the sizes the
//! table field names (checked just before), which is the contract of the generated calls.

use std::sync::Arc;

use super::call::collected;
use super::{Handle, Library};
use crate::Batch;
use crate::error::{Error, Result, check_dim};
use crate::model::target::Target;
use crate::plugin::abi::{Object, TargetInfo, TargetTable};
use crate::rng::{Rng, child_seed};

/// A target created by a plugin library.
pub struct PluginTarget {
    h: Handle<TargetTable>,
    info: TargetInfo,
    observable_names: Vec<String>,
    known_means: Vec<(String, f64)>,
    test_set: Option<Batch>,
}

impl PluginTarget {
    pub(crate) fn new(lib: Arc<Library>, obj: Object) -> Result<Self> {
        let h = Handle::<TargetTable>::new(lib, obj)?;
        let (o, tb, name) = (h.shared(), h.table(), h.plugin());
        let mut info = TargetInfo::default();
        // SAFETY: a live handle and a writable `TargetInfo`.
        unsafe { tb.info(name, o, &mut info) }?;
        // SAFETY: a live handle and a sink valid for the call (likewise the next two).
        let names = collected(|out| unsafe { tb.observable_names(name, o, out) })?;
        // SAFETY: as for `names`.
        let means = collected(|out| unsafe { tb.known_means(name, o, out) })?;
        // SAFETY: as for `names`.
        let test = collected(|out| unsafe { tb.test_set(name, o, out) })?;
        check_dim("observable names", names.len(), info.n_observables)?;
        let observable_names = names.into_iter().map(|(n, _)| n).collect();
        let known_means = means.into_iter().filter_map(|(n, v)| v.first().map(|x| (n, *x))).collect();
        let test_set = match test.into_iter().next() {
            Some((_, v)) if info.dim == 0 || v.len() % info.dim != 0 => {
                return Err(Error::Dim(format!("test set of {} numbers for dimension {}", v.len(), info.dim)));
            }
            Some((_, v)) => Some(Batch::from_vec(info.dim, v.len() / info.dim, v)),
            None => None,
        };
        Ok(PluginTarget { h, info, observable_names, known_means, test_set })
    }

    fn eval(&self, x: &Batch, out: &mut [f64], grad: *mut f64) -> Result<()> {
        let (d, n) = x.shape();
        check_dim("sample dimension", d, self.info.dim)?;
        check_dim("output length", out.len(), n)?;
        let (o, tb) = (self.h.shared(), self.h.table());
        // SAFETY: a live handle; `x` holds `d x n` numbers, `out` `n`, a non-null `grad` `d x n` (checked by callers).
        unsafe { tb.log_prob(self.h.plugin(), o, x.as_ptr(), d, n, out.as_mut_ptr(), grad) }
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
        let (o, tb) = (self.h.shared(), self.h.table());
        // SAFETY: a live handle and room for `dim x n` numbers.
        unsafe { tb.sample(self.h.plugin(), o, n, seed, 0, b.as_mut_ptr()) }?;
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
        let (o, tb) = (self.h.shared(), self.h.table());
        // SAFETY: a live handle; lengths checked just above.
        unsafe { tb.observables(self.h.plugin(), o, x.as_ptr(), x.len(), 1, out.as_mut_ptr()) }
    }

    fn known_means(&self) -> Vec<(String, f64)> {
        self.known_means.clone()
    }

    fn test_set(&self) -> Option<Batch> {
        self.test_set.clone()
    }
}
