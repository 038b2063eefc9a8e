//! Plugin side of the boundary: [`export_plugin!`](crate::export_plugin) and the glue that turns
//! the factories of an ordinary `register(&mut Registry)` function into the C tables.
//!
//! ```ignore
//! pub fn register(reg: &mut bootflow_core::Registry) -> bootflow_core::Result<()> { ... }
//! bootflow_core::export_plugin!(name = "realnvp", register = register);
//! ```
//!
//! The crate must be built as a `cdylib` with the default `panic = "unwind"` (with `abort`
//! a panic cannot be turned into an error). Objectives cannot be exported (ABI 1 carries
//! targets, bijections and kernels); registering one makes the plugin fail to load with a
//! message saying so.

mod bijection;
pub(crate) mod guard;
mod kernel;
mod target;

use std::sync::OnceLock;

use serde_json::Value;

use crate::error::{Error, Result};
use crate::plugin::abi::{CreateRequest, FactoryInfo, FactoryList, Object, ObjectSink, Sink, Status, Str, kind};
use crate::registry::{LayerContext, Registry};

/// Exports the plugin header `BOOTFLOW_PLUGIN` of a cdylib crate.
///
/// `name` is the plugin's name (a string literal); `register` is a path to a
/// `fn(&mut Registry) -> Result<()>` that adds the plugin's targets, bijections and kernels
/// (with any `Source`: the host records the library path). The version is the crate's
/// `CARGO_PKG_VERSION`. Invoke it once per crate, at the crate root or in any module.
///
/// The entry symbol exists only with the invoking crate's cargo feature `export` (declare
/// `export = []` and make it a default feature): a crate that links several plugin crates as
/// rlibs turns it off for them, so that one binary holds no entry symbol of theirs. It uses them
/// through the same header under a crate-local name, `BOOTFLOW_PLUGIN_HEADER`, which the macro
/// always defines, with [`plugin::linked`](crate::plugin::linked).
#[macro_export]
macro_rules! export_plugin {
    (name = $name:literal, register = $register:path $(,)?) => {
        #[doc(hidden)]
        static __BOOTFLOW_PLUGIN_STATE: $crate::plugin::export::PluginState =
            $crate::plugin::export::PluginState::new();

        #[doc(hidden)]
        unsafe extern "C" fn __bootflow_plugin_factories(
            out: *mut $crate::plugin::abi::FactoryList,
            err: $crate::plugin::abi::Sink,
        ) -> $crate::plugin::abi::Status {
            // SAFETY: the host calls the entry with a writable list and a valid sink (ABI contract).
            unsafe { __BOOTFLOW_PLUGIN_STATE.factories($register, out, err) }
        }

        #[doc(hidden)]
        unsafe extern "C" fn __bootflow_plugin_create(
            req: *const $crate::plugin::abi::CreateRequest,
            out: $crate::plugin::abi::ObjectSink,
            err: $crate::plugin::abi::Sink,
        ) -> $crate::plugin::abi::Status {
            // SAFETY: the host calls the entry with a valid request and sinks (ABI contract).
            unsafe { __BOOTFLOW_PLUGIN_STATE.create($register, req, out, err) }
        }

        /// The plugin's header, for a binary that links this crate and uses it through its C
        /// tables (`bootflow_core::plugin::linked`).
        pub static BOOTFLOW_PLUGIN_HEADER: $crate::plugin::abi::Header = $crate::plugin::abi::Header {
            abi_version: $crate::plugin::abi::ABI_VERSION,
            header_size: ::core::mem::size_of::<$crate::plugin::abi::Header>() as u32,
            name: $crate::plugin::abi::Str::new($name),
            version: $crate::plugin::abi::Str::new(env!("CARGO_PKG_VERSION")),
            factories: __bootflow_plugin_factories,
            create: __bootflow_plugin_create,
        };

        // The entry symbol the host looks up in a loaded library: the same header.
        #[cfg(feature = "export")]
        #[doc(hidden)]
        #[unsafe(no_mangle)]
        pub static BOOTFLOW_PLUGIN: $crate::plugin::abi::Header = $crate::plugin::abi::Header {
            abi_version: $crate::plugin::abi::ABI_VERSION,
            header_size: ::core::mem::size_of::<$crate::plugin::abi::Header>() as u32,
            name: $crate::plugin::abi::Str::new($name),
            version: $crate::plugin::abi::Str::new(env!("CARGO_PKG_VERSION")),
            factories: __bootflow_plugin_factories,
            create: __bootflow_plugin_create,
        };
    };
}

/// The plugin's registry, built by its `register` function on the first call, and the factory
/// list that points into it (so it lives as long as the library).
pub struct PluginState {
    cell: OnceLock<std::result::Result<Registered, String>>,
}

struct Registered {
    registry: Registry,
    infos: Vec<FactoryInfo>,
}

// SAFETY: `infos` only points at strings owned by `registry`, which is never changed after
// construction; `Registry` itself is `Send + Sync`.
unsafe impl Send for Registered {}
// SAFETY: as for `Send`: nothing in it changes after construction.
unsafe impl Sync for Registered {}

impl Registered {
    fn new(register: fn(&mut Registry) -> Result<()>) -> Result<Self> {
        let mut registry = Registry::new();
        register(&mut registry)?;
        if let Some(name) = registry.objectives.keys().next() {
            return Err(Error::Config(format!(
                "objective '{name}' cannot be exported by a plugin (the plugin ABI carries targets, bijections and kernels)"
            )));
        }
        let info = |k, name: &String, description: &String| FactoryInfo {
            kind: k,
            name: Str::new(name),
            description: Str::new(description),
        };
        let mut infos = Vec::new();
        infos.extend(registry.targets.iter().map(|(n, e)| info(kind::TARGET, n, &e.description)));
        infos.extend(registry.bijections.iter().map(|(n, e)| info(kind::BIJECTION, n, &e.description)));
        infos.extend(registry.kernels.iter().map(|(n, e)| info(kind::KERNEL, n, &e.description)));
        Ok(Registered { registry, infos })
    }

    fn create(&self, req: &CreateRequest) -> Result<Vec<Object>> {
        // SAFETY: the host passes text valid for the call.
        let name = unsafe { req.name.to_string_lossy() };
        // SAFETY: as for the name.
        let json = unsafe { req.config_json.to_string_lossy() };
        let config: Value =
            serde_json::from_str(&json).map_err(|e| Error::Config(format!("config of '{name}' is not JSON: {e}")))?;
        let r = &self.registry;
        Ok(match req.kind {
            kind::TARGET => {
                vec![Object { handle: target::handle(r.target(&name, &config)?), table: table(&target::TABLE) }]
            }
            kind::BIJECTION => {
                let ctx = LayerContext { dim: req.dim, index: req.index, seed: req.seed };
                let layers = r.bijection(&name, &ctx, &config)?;
                layers
                    .into_iter()
                    .map(|b| Object { handle: bijection::handle(b), table: table(&bijection::TABLE) })
                    .collect()
            }
            kind::KERNEL => {
                vec![Object {
                    handle: kernel::handle(r.kernel(&name, req.dim, &config)?),
                    table: table(&kernel::TABLE),
                }]
            }
            k => return Err(Error::Other(format!("unknown factory kind {k}"))),
        })
    }
}

fn table<T>(t: &'static T) -> *const std::ffi::c_void {
    t as *const T as *const std::ffi::c_void
}

impl PluginState {
    /// An empty state for the plugin's `static`; registration runs on the first `factories` or `create` call.
    pub const fn new() -> Self {
        Self { cell: OnceLock::new() }
    }

    fn registered(&self, register: fn(&mut Registry) -> Result<()>) -> Result<&Registered> {
        self.cell
            .get_or_init(|| Registered::new(register).map_err(|e| e.to_string()))
            .as_ref()
            .map_err(|m| Error::Other(format!("registration failed: {m}")))
    }

    /// Body of the exported `factories` entry.
    ///
    /// # Safety
    /// `out` must be valid for a write; `err` must be a valid sink.
    pub unsafe fn factories(
        &self,
        register: fn(&mut Registry) -> Result<()>,
        out: *mut FactoryList,
        err: Sink,
    ) -> Status {
        guard::call(err, || {
            let r = self.registered(register)?;
            // SAFETY: `out` is writable by this function's contract; the list lives as long as the library.
            unsafe { guard::write(out, FactoryList { ptr: r.infos.as_ptr(), len: r.infos.len() }) }
        })
    }

    /// Body of the exported `create` entry.
    ///
    /// # Safety
    /// `req` must point to a valid request; `out` and `err` must be valid sinks.
    pub unsafe fn create(
        &self,
        register: fn(&mut Registry) -> Result<()>,
        req: *const CreateRequest,
        out: ObjectSink,
        err: Sink,
    ) -> Status {
        guard::call(err, || {
            if req.is_null() {
                return Err(Error::Other("null create request".into()));
            }
            // SAFETY: checked non-null above; valid for the call by this function's contract.
            let objects = self.registered(register)?.create(unsafe { &*req })?;
            for o in objects {
                // SAFETY: the host made `out` for this call; ownership of `o` passes to the host.
                unsafe { (out.put)(out.ctx, o) };
            }
            Ok(())
        })
    }
}

impl Default for PluginState {
    fn default() -> Self {
        Self::new()
    }
}
