//! The C types of the plugin boundary. Nothing here allocates or frees: these are the shapes
//! both sides agree on (see the module docs of [`crate::plugin`] for the rules).

use std::ffi::c_void;

use crate::error::Error;
pub use crate::plugin::tables::{BijectionTable, KernelTable, TargetTable};

/// Bumped on any change that is not "a field appended at the end of a table or header".
pub const ABI_VERSION: u32 = 1;

/// Name of the one exported symbol: a static [`Header`].
pub const ENTRY_SYMBOL: &str = "BOOTFLOW_PLUGIN";

/// Result code of every exported function: [`status::OK`] or an error whose message was
/// written to the caller's error [`Sink`].
pub type Status = i32;

/// Values of [`Status`]. Errors keep their broad kind across the boundary.
pub mod status {
    use super::Status;
    pub const OK: Status = 0;
    pub const CONFIG: Status = 1;
    pub const DIM: Status = 2;
    pub const NON_FINITE: Status = 3;
    pub const UNSUPPORTED: Status = 4;
    pub const OTHER: Status = 5;
    /// The callee panicked; the panic was caught and the object is poisoned.
    pub const PANIC: Status = 6;
}

/// Factory kinds in [`FactoryInfo::kind`] and [`CreateRequest::kind`].
pub mod kind {
    pub const TARGET: u32 = 0;
    pub const BIJECTION: u32 = 1;
    pub const KERNEL: u32 = 2;
}

/// Borrowed UTF-8 text (not NUL-terminated), valid for the duration of the call unless the
/// field says otherwise.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Str {
    pub ptr: *const u8,
    pub len: usize,
}

impl Str {
    pub const fn new(s: &str) -> Self {
        Str { ptr: s.as_ptr(), len: s.len() }
    }

    /// The text, replacing invalid UTF-8.
    ///
    /// # Safety
    /// `ptr` must point to `len` readable bytes (or `len == 0`).
    pub unsafe fn to_string_lossy(self) -> String {
        if self.len == 0 || self.ptr.is_null() {
            return String::new();
        }
        String::from_utf8_lossy(unsafe { std::slice::from_raw_parts(self.ptr, self.len) }).into_owned()
    }
}

/// A callback through which the callee copies results out to the caller: a text, and numbers.
/// Used for error messages (text only), names (text only), named values (text + 1 number) and
/// arrays (numbers only). The callee calls it zero or more times; the data is only borrowed.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Sink {
    pub ctx: *mut c_void,
    pub put: unsafe extern "C" fn(ctx: *mut c_void, text: Str, values: *const f64, n_values: usize),
}

/// The first two fields of every header, whatever its ABI: read alone before anything else.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct HeaderPrefix {
    pub abi_version: u32,
    /// `size_of` the plugin's [`Header`].
    pub header_size: u32,
}

/// The exported static. Fields are appended at the end only; `header_size` tells the host
/// which fields exist.
#[repr(C)]
pub struct Header {
    pub abi_version: u32,
    pub header_size: u32,
    /// Plugin name and version; static text of the library.
    pub name: Str,
    pub version: Str,
    /// Writes the list of provided factories to `out`; the list stays valid while the library
    /// is loaded. The list is built by running the plugin's registration code on first call,
    /// which is why it is behind a function and not a static array.
    pub factories: unsafe extern "C" fn(out: *mut FactoryList, err: Sink) -> Status,
    /// Creates the objects of one factory, handing each to `out` (a bijection entry may expand
    /// to several layers). Ownership of every handed object passes to the host, which releases
    /// it with its table's `destroy`.
    pub create: unsafe extern "C" fn(req: *const CreateRequest, out: ObjectSink, err: Sink) -> Status,
}

// SAFETY: the header is immutable data of the library (static text and function pointers).
unsafe impl Sync for Header {}

/// One provided factory.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct FactoryInfo {
    pub kind: u32,
    pub name: Str,
    pub description: Str,
}

#[repr(C)]
pub struct FactoryList {
    pub ptr: *const FactoryInfo,
    pub len: usize,
}

/// Arguments of [`Header::create`]. `dim`, `index` and `seed` are the bijection's
/// `LayerContext`; a kernel reads `dim`; a target reads none of them.
#[repr(C)]
pub struct CreateRequest {
    pub kind: u32,
    pub name: Str,
    /// The factory's config as a JSON text (`null` for an empty config).
    pub config_json: Str,
    pub dim: usize,
    pub index: usize,
    pub seed: u64,
}

/// An object made by a plugin: an opaque handle and the function table of its kind
/// (`*const TargetTable`, `*const BijectionTable` or `*const KernelTable`).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Object {
    pub handle: *mut c_void,
    pub table: *const c_void,
}

#[repr(C)]
pub struct ObjectSink {
    pub ctx: *mut c_void,
    pub put: unsafe extern "C" fn(ctx: *mut c_void, obj: Object),
}

/// Facts about a target, read once when it is created.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct TargetInfo {
    pub dim: usize,
    pub n_observables: usize,
    pub has_grad: u8,
    pub has_sampler: u8,
    pub has_log_z: u8,
    pub log_z: f64,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct BijectionInfo {
    pub dim: usize,
    pub n_params: usize,
}

/// The host's log-density, callable from a plugin kernel. Same calling convention as
/// [`TargetTable::log_prob`]; `ctx` is the host's and is valid only during the `step` call.
#[repr(C)]
pub struct DensityCallback {
    /// The host's density.
    pub ctx: *const c_void,
    /// Its dimension.
    pub dim: usize,
    /// `eval(ctx, x, dim, n, out, grad, err)`, as [`TargetTable::log_prob`] with `ctx` for the object.
    pub eval: DensityEval,
}

/// Type of [`DensityCallback::eval`].
pub type DensityEval =
    unsafe extern "C" fn(*const c_void, *const f64, usize, usize, *mut f64, *mut f64, Sink) -> Status;

/// The chain state and per-chain statistics a kernel step reads and writes in place.
/// `grad` is null when the kernel does not need gradients.
#[repr(C)]
pub struct ChainBuffers {
    pub dim: usize,
    pub n: usize,
    pub x: *mut f64,
    pub log_p: *mut f64,
    pub grad: *mut f64,
    pub accept_prob: *mut f64,
    pub accepted: *mut u8,
}

/// The status and message that carry `e` across the boundary.
pub fn encode_error(e: &Error) -> (Status, String) {
    match e {
        Error::Config(m) => (status::CONFIG, m.clone()),
        Error::Dim(m) => (status::DIM, m.clone()),
        Error::NonFinite(m) => (status::NON_FINITE, m.clone()),
        Error::Unsupported(m) => (status::UNSUPPORTED, m.clone()),
        other => (status::OTHER, other.to_string()),
    }
}

/// The error for a non-OK status and its message; `origin` names the other side (a plugin
/// name on the host, "host" inside a plugin) for errors that do not keep their kind.
pub fn decode_error(code: Status, message: String, origin: &str) -> Error {
    let plugin = |message: String| Error::Plugin { plugin: origin.to_string(), message };
    match code {
        status::CONFIG => Error::Config(message),
        status::DIM => Error::Dim(message),
        status::NON_FINITE => Error::NonFinite(message),
        status::UNSUPPORTED => Error::Unsupported(message),
        status::OTHER => plugin(message),
        status::PANIC => plugin(format!("panicked: {message}")),
        c => plugin(format!("unknown status {c}: {message}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_keep_their_kind_across_the_boundary() {
        for e in [Error::Config("a".into()), Error::Dim("b".into()), Error::Unsupported("c".into())] {
            let (code, msg) = encode_error(&e);
            assert_eq!(decode_error(code, msg, "p").to_string(), e.to_string());
        }
        let (code, msg) = encode_error(&Error::Other("boom".into()));
        assert_eq!(decode_error(code, msg, "gauss").to_string(), "plugin gauss: boom");
        assert!(decode_error(status::PANIC, "x".into(), "g").to_string().contains("panicked: x"));
    }

    #[test]
    fn header_starts_with_its_prefix() {
        assert_eq!(std::mem::offset_of!(Header, abi_version), std::mem::offset_of!(HeaderPrefix, abi_version));
        assert_eq!(std::mem::offset_of!(Header, header_size), std::mem::offset_of!(HeaderPrefix, header_size));
    }
}
