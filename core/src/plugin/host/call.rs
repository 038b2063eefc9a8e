//! Host side of a call into a plugin: sinks that copy text and numbers out, and the
//! translation of a status into a `Result`.

use std::ffi::c_void;
use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::error::Result;
use crate::plugin::abi::{Sink, Status, Str, decode_error, status};

/// Everything a plugin put into a sink during one call: `(text, numbers)` per put.
#[derive(Default)]
pub(crate) struct Collected(pub Vec<(String, Vec<f64>)>);

unsafe extern "C" fn collect(ctx: *mut c_void, text: Str, values: *const f64, n: usize) {
    // A panic must not unwind into the plugin; copying can only fail by running out of memory.
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `ctx` is the `Collected` of `Collected::sink`, exclusively borrowed for the call.
        let c = unsafe { &mut *(ctx as *mut Collected) };
        let numbers = if n == 0 || values.is_null() {
            Vec::new()
        } else {
            // SAFETY: non-null with `n > 0`; the plugin lends `n` numbers for the duration of `put`.
            unsafe { std::slice::from_raw_parts(values, n) }.to_vec()
        };
        // SAFETY: the plugin lends the text for the duration of `put`.
        c.0.push((unsafe { text.to_string_lossy() }, numbers));
    }));
}

impl Collected {
    /// A sink that appends to `self`; valid while `self` is borrowed.
    pub(crate) fn sink(&mut self) -> Sink {
        Sink { ctx: self as *mut Collected as *mut c_void, put: collect }
    }

    fn message(self) -> String {
        let parts: Vec<String> = self.0.into_iter().map(|(t, _)| t).collect();
        if parts.is_empty() { "no message".to_string() } else { parts.concat() }
    }
}

/// Runs one plugin call with a fresh error sink and turns its status into a `Result`.
pub(crate) fn call(plugin: &str, f: impl FnOnce(Sink) -> Status) -> Result<()> {
    let mut err = Collected::default();
    let code = f(err.sink());
    if code == status::OK { Ok(()) } else { Err(decode_error(code, err.message(), plugin)) }
}

/// What a call puts into an output sink: `f` makes the call with the sink.
pub(crate) fn collected(f: impl FnOnce(Sink) -> Result<()>) -> Result<Vec<(String, Vec<f64>)>> {
    let mut out = Collected::default();
    f(out.sink())?;
    Ok(out.0)
}
