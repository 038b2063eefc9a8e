//! A plugin's bijection behind the [`Bijection`] trait. Parameters are mirrored on the host
//! (they only change through `set_params`), so `params()` never crosses the boundary. A pass's
//! tape stays a plugin-owned pointer inside a host [`Tape`] that frees it on drop and is only
//! handed back to the object and direction that recorded it.

use std::ffi::c_void;
use std::sync::Arc;

use super::{Handle, Library};
use crate::Batch;
use crate::error::{Error, Result, check_dim};
use crate::model::bijection::{Bijection, Cotangent, Direction, Pass, Tape};
use crate::plugin::abi::{BijectionInfo, BijectionTable, Object};

/// A bijection created by a plugin library.
pub struct PluginBijection {
    h: Handle<BijectionTable>,
    info: BijectionInfo,
    params: Vec<f64>,
}

/// A plugin's tape with what is needed to check and free it.
struct PluginTape {
    ptr: *mut c_void,
    owner: *const c_void,
    direction: Direction,
    free: unsafe extern "C" fn(*mut c_void),
    lib: Arc<Library>,
}

// SAFETY: the pointer is a plugin-side `Box<Tape>`, and `Tape` is `Send + Sync`.
unsafe impl Send for PluginTape {}
// SAFETY: as for `Send`; the host only reads the pointer, the plugin frees it once.
unsafe impl Sync for PluginTape {}

impl Drop for PluginTape {
    fn drop(&mut self) {
        // SAFETY: `ptr` is a tape the plugin's `pass` returned, freed only here; `lib` keeps the
        // function mapped.
        unsafe { (self.free)(self.ptr) }
    }
}

impl PluginBijection {
    pub(crate) fn new(lib: Arc<Library>, obj: Object) -> Result<Self> {
        let h = Handle::<BijectionTable>::new(lib, obj)?;
        let (o, tb) = (h.shared(), h.table());
        let mut info = BijectionInfo::default();
        // SAFETY: a live handle and a writable `BijectionInfo`.
        unsafe { tb.info(h.plugin(), o, &mut info) }?;
        let mut params = vec![0.0; info.n_params];
        // SAFETY: a live handle and a buffer of `n_params` numbers.
        unsafe { tb.params(h.plugin(), o, params.as_mut_ptr(), params.len()) }?;
        Ok(PluginBijection { h, info, params })
    }
}

impl PluginBijection {
    /// The host's [`Tape`] around a tape pointer the plugin wrote, or an error when a recorded
    /// pass wrote none.
    fn take_tape(&self, tape: *mut c_void, direction: Direction, record: bool) -> Result<Option<Tape>> {
        let o = self.h.shared();
        let tape = (record && !tape.is_null()).then(|| {
            Tape::new(PluginTape {
                ptr: tape,
                owner: o,
                direction,
                free: self.h.table().free_tape,
                lib: self.h.lib().clone(),
            })
        });
        if record && tape.is_none() {
            return Err(Error::Plugin {
                plugin: self.h.plugin().to_string(),
                message: "layer recorded no tape".into(),
            });
        }
        Ok(tape)
    }
}

impl Bijection for PluginBijection {
    fn dim(&self) -> usize {
        self.info.dim
    }

    fn n_params(&self) -> usize {
        self.info.n_params
    }

    fn params(&self) -> Vec<f64> {
        self.params.clone()
    }

    fn load_params(&mut self, params: &[f64]) -> Result<()> {
        let (o, tb) = (self.h.exclusive(), self.h.table());
        // SAFETY: a live handle, exclusively borrowed, and `n_params` numbers (checked by
        // `set_params`).
        unsafe { tb.set_params(self.h.plugin(), o, params.as_ptr(), params.len()) }?;
        self.params.copy_from_slice(params);
        Ok(())
    }

    fn pass(&self, direction: Direction, input: &Batch, record: bool) -> Result<Pass> {
        let (d, n) = input.shape();
        check_dim("layer input rows", d, self.info.dim)?;
        let mut out = Batch::zeros(d, n);
        let mut log_det = vec![0.0; n];
        let mut tape: *mut c_void = std::ptr::null_mut();
        let (o, tb) = (self.h.shared(), self.h.table());
        let inverse = direction.is_inverse() as u8;
        let (out_ptr, ld_ptr) = (out.as_mut_ptr(), log_det.as_mut_ptr());
        // SAFETY: the buffers hold `d x n` and `n` numbers; `o` is this object's live handle.
        unsafe {
            tb.pass(self.h.plugin(), o, inverse, input.as_ptr(), d, n, record as u8, out_ptr, ld_ptr, &mut tape)
        }?;
        let tape = self.take_tape(tape, direction, record)?;
        Ok(Pass { out, log_det, tape })
    }

    fn pass_with_score(
        &self,
        direction: Direction,
        input: &Batch,
        score: &Batch,
        record: bool,
    ) -> Result<(Pass, Batch)> {
        let (d, n) = input.shape();
        check_dim("layer input rows", d, self.info.dim)?;
        check_dim("layer score rows", score.nrows(), d)?;
        check_dim("layer score columns", score.ncols(), n)?;
        let (mut out, mut score_out) = (Batch::zeros(d, n), Batch::zeros(d, n));
        let mut log_det = vec![0.0; n];
        let mut tape: *mut c_void = std::ptr::null_mut();
        let (o, tb) = (self.h.shared(), self.h.table());
        let inverse = direction.is_inverse() as u8;
        let (out_ptr, ld_ptr, s_ptr) = (out.as_mut_ptr(), log_det.as_mut_ptr(), score_out.as_mut_ptr());
        // SAFETY: the buffers hold `d x n`, `n` and `d x n` numbers; the inputs `d x n` each; `o`
        // is this object's live handle.
        unsafe {
            tb.score_pass(
                self.h.plugin(),
                o,
                inverse,
                input.as_ptr(),
                score.as_ptr(),
                d,
                n,
                record as u8,
                out_ptr,
                ld_ptr,
                s_ptr,
                &mut tape,
            )
        }?;
        let tape = self.take_tape(tape, direction, record)?;
        Ok((Pass { out, log_det, tape }, score_out))
    }

    fn vjp(&self, direction: Direction, tape: &Tape, g: Cotangent<'_>) -> Result<Batch> {
        let t = tape.get::<PluginTape>().filter(|t| {
            std::ptr::eq(t.owner, self.h.shared()) && t.direction == direction && Arc::ptr_eq(&t.lib, self.h.lib())
        });
        let Some(t) = t else {
            return Err(Error::Other("tape was not recorded by this plugin layer in this direction".into()));
        };
        let (d, n) = g.out.shape();
        check_dim("cotangent rows", d, self.info.dim)?;
        check_dim("log-det cotangent length", g.log_det.len(), n)?;
        let (gp, np) = match g.params {
            Some(g) => {
                check_dim("parameter cotangent length", g.len(), self.info.n_params)?;
                (g.as_mut_ptr(), g.len())
            }
            None => (std::ptr::null_mut(), 0),
        };
        let mut g_in = Batch::zeros(d, n);
        let (o, tb) = (self.h.shared(), self.h.table());
        let inverse = direction.is_inverse() as u8;
        let (g_out, g_ld, g_in_ptr) = (g.out.as_ptr(), g.log_det.as_ptr(), g_in.as_mut_ptr());
        // SAFETY: the buffers were checked against `d x n` above; the tape is this object's, of
        // this direction, and still alive (`t` borrows it).
        unsafe { tb.vjp(self.h.plugin(), o, inverse, t.ptr, g_out, d, n, g_ld, gp, np, g_in_ptr) }?;
        Ok(g_in)
    }
}
