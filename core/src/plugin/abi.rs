//! The C types of the plugin boundary. Nothing here allocates or frees: these are the shapes
//! both sides agree on (see the module docs of [`crate::plugin`] for the rules).

use std::ffi::c_void;

use crate::error::Error;
pub use crate::plugin::tables::{BijectionTable, KernelTable, TargetTable};

/// Bumped on any change that is not "a field appended at the end of a table or header".
pub const ABI_VERSION: u32 = 2;

/// Name of the one exported symbol: a static [`Header`].
pub const ENTRY_SYMBOL: &str = "BOOTFLOW_PLUGIN";

/// Result code of every exported function: [`status::OK`] or an error whose message was
/// written to the caller's error [`Sink`].
pub type Status = i32;

/// Values of [`Status`]. Errors keep their broad kind across the boundary.
pub mod status {
    use super::Status;
    /// Success: every output the function promises has been written.
    pub const OK: Status = 0;
    /// Invalid configuration (`Error::Config`).
    pub const CONFIG: Status = 1;
    /// Dimension or shape mismatch (`Error::Dim`, `Error::Shape`).
    pub const DIM: Status = 2;
    /// A NaN or infinity where a finite number was required (`Error::NonFinite`).
    pub const NON_FINITE: Status = 3;
    /// The object does not support the requested operation (`Error::Unsupported`).
    pub const UNSUPPORTED: Status = 4;
    /// Any other error; decoded as `Error::Plugin` naming the other side.
    pub const OTHER: Status = 5;
    /// The callee panicked; the panic was caught and the object is poisoned.
    pub const PANIC: Status = 6;
}

/// Factory kinds in [`FactoryInfo::kind`] and [`CreateRequest::kind`].
pub mod kind {
    /// A target density: `create` hands over one object with a `TargetTable`.
    pub const TARGET: u32 = 0;
    /// A bijection: `create` hands over one or more layer objects, each with a `BijectionTable`.
    pub const BIJECTION: u32 = 1;
    /// An MCMC kernel: `create` hands over one object with a `KernelTable`.
    pub const KERNEL: u32 = 2;
}

/// Borrowed UTF-8 text (not NUL-terminated), valid for the duration of the call unless the
/// field says otherwise.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Str {
    /// Start of the UTF-8 bytes; never read (and may be null or dangling) when `len` is 0.
    pub ptr: *const u8,
    /// Length in bytes, without any terminator.
    pub len: usize,
}

impl Str {
    /// Borrows `s`: the result is valid only as long as `s` is.
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
        // SAFETY: non-null with `len > 0`, readable for `len` bytes by this function's contract.
        String::from_utf8_lossy(unsafe { std::slice::from_raw_parts(self.ptr, self.len) }).into_owned()
    }
}

/// A callback through which the callee copies results out to the caller: a text, and numbers.
/// Used for error messages (text only), names (text only), named values (text + 1 number) and
/// arrays (numbers only). The callee calls it zero or more times; the data is only borrowed.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Sink {
    /// Caller-owned state, passed back unchanged as the first argument of `put`; opaque to the callee.
    pub ctx: *mut c_void,
    /// Receives one item: `text` and `n_values` numbers at `values` (null when `n_values` is 0),
    /// both borrowed for the duration of this call only.
    pub put: unsafe extern "C" fn(ctx: *mut c_void, text: Str, values: *const f64, n_values: usize),
}

/// The first two fields of every header, whatever its ABI: read alone before anything else.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct HeaderPrefix {
    /// The plugin's ABI number; the host refuses the library unless it equals [`ABI_VERSION`].
    pub abi_version: u32,
    /// `size_of` the plugin's [`Header`].
    pub header_size: u32,
}

/// The exported static. Fields are appended at the end only; `header_size` tells the host
/// which fields exist.
#[repr(C)]
pub struct Header {
    /// [`ABI_VERSION`] the plugin was built for; at the same offset as [`HeaderPrefix::abi_version`].
    pub abi_version: u32,
    /// `size_of::<Header>()` in the plugin, in bytes: tells the host which appended fields exist.
    pub header_size: u32,
    /// Plugin name; static text of the library.
    pub name: Str,
    /// Plugin version (its crate's `CARGO_PKG_VERSION`); static text of the library.
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
    /// One of the [`kind`] constants.
    pub kind: u32,
    /// Name the factory is registered under (what [`CreateRequest::name`] asks for).
    pub name: Str,
    /// One-line human-readable description.
    pub description: Str,
}

/// The plugin's array of [`FactoryInfo`], written by [`Header::factories`]. Plugin-owned: the array
/// and its texts stay valid while the library is loaded; the host never frees them.
#[repr(C)]
pub struct FactoryList {
    /// First of `len` consecutive entries; not read when `len` is 0.
    pub ptr: *const FactoryInfo,
    /// Number of entries.
    pub len: usize,
}

/// Arguments of [`Header::create`]. `dim`, `index` and `seed` are the bijection's
/// `LayerContext`; a kernel reads `dim`; a target reads none of them.
#[repr(C)]
pub struct CreateRequest {
    /// One of the [`kind`] constants: which kind of factory `name` refers to.
    pub kind: u32,
    /// Name of the factory to run, as listed by [`Header::factories`].
    pub name: Str,
    /// The factory's config as a JSON text (`null` for an empty config).
    pub config_json: Str,
    /// Bijection: dimension of the flow; kernel: dimension of the density it will sample; target: unused.
    pub dim: usize,
    /// Bijection only: position of this entry in the flow's layer list.
    pub index: usize,
    /// Bijection only: seed for the entry's random initialisation, masks and permutations.
    pub seed: u64,
}

/// An object made by a plugin: an opaque handle and the function table of its kind
/// (`*const TargetTable`, `*const BijectionTable` or `*const KernelTable`).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Object {
    /// The object, allocated by the plugin; owned by the host once handed over, freed with the table's `destroy`.
    pub handle: *mut c_void,
    /// The plugin's static table for the object's kind, valid while the library is loaded.
    pub table: *const c_void,
}

/// Callback through which [`Header::create`] hands the host each object it made, in order
/// (for a bijection: the layers in flow order).
#[repr(C)]
pub struct ObjectSink {
    /// Host-owned state, passed back unchanged as the first argument of `put`.
    pub ctx: *mut c_void,
    /// Takes ownership of `obj`; called once per object.
    pub put: unsafe extern "C" fn(ctx: *mut c_void, obj: Object),
}

/// Facts about a target, read once when it is created.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct TargetInfo {
    /// Dimension of the target's sample space.
    pub dim: usize,
    /// Number of observables: the length of `observable_names` and the rows of `observables`' output.
    pub n_observables: usize,
    /// Non-zero when `log_prob` can also write gradients (a non-null `grad`).
    pub has_grad: u8,
    /// Non-zero when `sample` draws exact samples.
    pub has_sampler: u8,
    /// Non-zero when `log_z` holds the known normalising constant.
    pub has_log_z: u8,
    /// `log Z` of the unnormalised target; meaningful only when `has_log_z` is non-zero (the SDK writes NaN otherwise).
    pub log_z: f64,
}

/// Facts about a bijection layer, read once when it is created.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct BijectionInfo {
    /// Dimension the layer acts on (that of the flow).
    pub dim: usize,
    /// Number of trainable parameters: the `len` of `params` and `set_params`, the length of `g_params`.
    pub n_params: usize,
}

/// The host's log-density, callable from a plugin kernel. Same calling convention as
/// the `log_prob` entry of [`TargetTable`]; `ctx` is the host's and is valid only during the `step` call.
#[repr(C)]
pub struct DensityCallback {
    /// The host's density.
    pub ctx: *const c_void,
    /// Its dimension.
    pub dim: usize,
    /// `eval(ctx, x, dim, n, out, grad, err)`, as the `log_prob` entry of [`TargetTable`] with `ctx` for the object.
    pub eval: DensityEval,
}

/// Type of [`DensityCallback::eval`].
pub type DensityEval =
    unsafe extern "C" fn(*const c_void, *const f64, usize, usize, *mut f64, *mut f64, Sink) -> Status;

/// The chain state and per-chain statistics a kernel step reads and writes in place.
/// `grad` is null when the kernel does not need gradients.
#[repr(C)]
pub struct ChainBuffers {
    /// Dimension of each chain position (rows of `x` and `grad`).
    pub dim: usize,
    /// Number of chains (columns of `x` and `grad`; length of every per-chain array).
    pub n: usize,
    /// `dim x n` column-major positions; updated in place to the new states.
    pub x: *mut f64,
    /// `n` log-densities of the columns of `x`, kept in step with `x`.
    pub log_p: *mut f64,
    /// `dim x n` column-major log-density gradients at `x`, kept in step with `x`; null when not tracked.
    pub grad: *mut f64,
    /// Output: `n` acceptance probabilities of this step's proposals.
    pub accept_prob: *mut f64,
    /// Output: `n` flags, 1 where the proposal was taken and 0 where it was not.
    pub accepted: *mut u8,
}

/// The status and message that carry `e` across the boundary.
pub fn encode_error(e: &Error) -> (Status, String) {
    match e {
        Error::Config(m) => (status::CONFIG, m.clone()),
        Error::Dim(m) => (status::DIM, m.clone()),
        Error::Shape { what, got, expected } => (status::DIM, format!("{what}: got {got}, expected {expected}")),
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
