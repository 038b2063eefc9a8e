//! Host side of the boundary: loading a library, checking its header, and wrapping the objects
//! it creates in the core traits. Every wrapper holds an `Arc` of the library, so a library stays
//! loaded while any object made from it lives.

mod bijection;
pub(crate) mod call;
mod handle;
mod kernel;
mod target;

use std::ffi::c_void;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;

use crate::error::{Error, Result};
use crate::plugin::abi::{
    ABI_VERSION, CreateRequest, ENTRY_SYMBOL, FactoryList, Header, HeaderPrefix, Object, ObjectSink, kind,
};
use crate::registry::{LayerContext, Registry, Source};

pub use bijection::PluginBijection;
pub use kernel::PluginKernel;
pub use target::PluginTarget;

use handle::Handle;

/// An open plugin library (or a plugin linked into this binary) and its checked header.
pub(crate) struct Library {
    header: *const Header,
    /// Plugin name, for error messages.
    name: String,
    // Last field: dropped (closed) after everything above; `None` for a linked plugin.
    _lib: Option<libloading::Library>,
}

// SAFETY: the header is immutable static data of the library, which stays open while `self`
// lives (a linked plugin's header is a `'static` of this binary); `libloading::Library` is
// `Send + Sync`.
unsafe impl Send for Library {}
// SAFETY: as for `Send`: the header is never written.
unsafe impl Sync for Library {}

impl Library {
    fn header(&self) -> &Header {
        // SAFETY: checked in `load` (ABI and size), valid while the library is open.
        unsafe { &*self.header }
    }
}

/// Kinds of component a plugin can provide.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A target density.
    Target,
    /// A bijection: one or more flow layers.
    Bijection,
    /// An MCMC kernel.
    Kernel,
}

impl Kind {
    /// Lower-case name for messages and listings: `target`, `bijection` or `kernel`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Target => "target",
            Kind::Bijection => "bijection",
            Kind::Kernel => "kernel",
        }
    }

    fn code(self) -> u32 {
        match self {
            Kind::Target => kind::TARGET,
            Kind::Bijection => kind::BIJECTION,
            Kind::Kernel => kind::KERNEL,
        }
    }
}

/// One factory a plugin provides.
#[derive(Clone, Debug)]
pub struct Provided {
    /// Which kind of component the factory makes.
    pub kind: Kind,
    /// Name the factory is registered under.
    pub name: String,
    /// One-line description given at registration.
    pub description: String,
}

/// A loaded plugin library.
#[derive(Clone)]
pub struct Plugin {
    /// File the library was loaded from; its factories are registered with `Source::Plugin(path)`.
    pub path: PathBuf,
    /// Plugin name, from its header.
    pub name: String,
    /// Plugin version, from its header.
    pub version: String,
    /// ABI version the library was checked against and loaded under ([`ABI_VERSION`]).
    pub abi: u32,
    /// The factories the library provides, in the order it lists them.
    pub provides: Vec<Provided>,
    lib: Arc<Library>,
}

/// Why a file was not loaded as a plugin.
#[derive(Clone, Debug, PartialEq)]
pub enum LoadError {
    /// The file is cut short (checked before the system loader maps it).
    Truncated(String),
    /// The system loader refused the file.
    FailedToLoad(String),
    /// A shared library without the entry symbol.
    NotAPlugin,
    /// A plugin built for another ABI.
    WrongAbi {
        /// `abi_version` in the plugin's header.
        found: u32,
        /// This host's [`ABI_VERSION`].
        expected: u32,
    },
    /// A header smaller than this ABI's.
    HeaderTooSmall {
        /// `header_size` in the plugin's header, in bytes.
        found: u32,
        /// Size in bytes of this ABI's [`Header`].
        expected: u32,
    },
    /// The header is readable but its contents are not usable (bad text, failed registration).
    Invalid(String),
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Truncated(m) => write!(f, "truncated file: {m}"),
            LoadError::FailedToLoad(m) => write!(f, "failed to load: {m}"),
            LoadError::NotAPlugin => write!(f, "not a bootflow plugin (no {ENTRY_SYMBOL} symbol)"),
            LoadError::WrongAbi { found, expected } => {
                write!(f, "wrong ABI: plugin has ABI {found}, this bootflow needs ABI {expected}")
            }
            LoadError::HeaderTooSmall { found, expected } => write!(
                f,
                "truncated header: plugin header is {found} bytes, ABI {ABI_VERSION} needs at least {expected}"
            ),
            LoadError::Invalid(m) => write!(f, "invalid plugin: {m}"),
        }
    }
}

/// Refuses a header prefix of another ABI or a header too small for this one.
pub fn check_prefix(p: HeaderPrefix) -> std::result::Result<(), LoadError> {
    if p.abi_version != ABI_VERSION {
        return Err(LoadError::WrongAbi { found: p.abi_version, expected: ABI_VERSION });
    }
    let need = size_of::<Header>() as u32;
    if p.header_size < need {
        return Err(LoadError::HeaderTooSmall { found: p.header_size, expected: need });
    }
    Ok(())
}

/// Loads the plugin at `path`: checks the file, opens it, reads the header prefix, and only
/// when that fits reads the rest of the header and the factory list.
pub fn load(path: &Path) -> std::result::Result<Plugin, LoadError> {
    crate::plugin::elf::check_complete(path).map_err(LoadError::Truncated)?;
    // SAFETY: opening a library runs its initialisers; the search rules decide which files
    // are trusted enough to be opened.
    let lib = unsafe { libloading::Library::new(path) }.map_err(|e| {
        // libloading's own text is "dlopen failed"; the loader's reason is its source.
        match std::error::Error::source(&e) {
            Some(why) => LoadError::FailedToLoad(format!("{e}: {why}")),
            None => LoadError::FailedToLoad(e.to_string()),
        }
    })?;
    // SAFETY: for a data symbol the "function" value is the address of the static.
    let prefix_ptr: *const HeaderPrefix = unsafe { lib.get::<*const HeaderPrefix>(ENTRY_SYMBOL.as_bytes()) }
        .map(|s| *s)
        .map_err(|_| LoadError::NotAPlugin)?;
    if prefix_ptr.is_null() {
        return Err(LoadError::NotAPlugin);
    }
    // SAFETY: every ABI starts its header with these two fields.
    check_prefix(unsafe { prefix_ptr.read_unaligned() })?;
    let header = prefix_ptr as *const Header;
    // SAFETY: the prefix said the static is a header of this ABI and at least this size.
    let h = unsafe { &*header };
    // SAFETY: the header's texts are static data of the open library.
    let name = unsafe { h.name.to_string_lossy() };
    // SAFETY: as for the name.
    let version = unsafe { h.version.to_string_lossy() };
    let lib = Arc::new(Library { header, name: name.clone(), _lib: Some(lib) });
    let provides = factories(&lib).map_err(|e| LoadError::Invalid(e.to_string()))?;
    Ok(Plugin { path: path.to_path_buf(), name, version, abi: ABI_VERSION, provides, lib })
}

/// A plugin crate linked into this binary as an rlib (its `export` feature off), used through
/// the same C tables as when it is loaded from a library, so that it computes the same bits:
/// `header` is the crate's `BOOTFLOW_PLUGIN_HEADER`. Its factories are registered with
/// `Source::Plugin("<linked>/NAME")`.
pub fn linked(header: &'static Header) -> std::result::Result<Plugin, LoadError> {
    check_prefix(HeaderPrefix { abi_version: header.abi_version, header_size: header.header_size })?;
    // SAFETY: the header's texts are static data of this binary.
    let (name, version) = unsafe { (header.name.to_string_lossy(), header.version.to_string_lossy()) };
    let lib = Arc::new(Library { header, name: name.clone(), _lib: None });
    let provides = factories(&lib).map_err(|e| LoadError::Invalid(e.to_string()))?;
    let path = PathBuf::from(format!("<linked>/{name}"));
    Ok(Plugin { path, name, version, abi: ABI_VERSION, provides, lib })
}

fn factories(lib: &Library) -> Result<Vec<Provided>> {
    let mut list = FactoryList { ptr: std::ptr::null(), len: 0 };
    // SAFETY: the header was checked in `load`; `list` is writable and `err` valid for the call.
    call::call(&lib.name, |err| unsafe { (lib.header().factories)(&mut list, err) })?;
    if list.len > 0 && list.ptr.is_null() {
        return Err(Error::Other("null factory list".into()));
    }
    // SAFETY: checked non-null; the list lives as long as the library (ABI contract).
    let infos = if list.len == 0 { &[][..] } else { unsafe { std::slice::from_raw_parts(list.ptr, list.len) } };
    infos
        .iter()
        .map(|i| {
            let kind = match i.kind {
                kind::TARGET => Kind::Target,
                kind::BIJECTION => Kind::Bijection,
                kind::KERNEL => Kind::Kernel,
                k => return Err(Error::Other(format!("unknown factory kind {k}"))),
            };
            // SAFETY: the texts are static data of the library, which `lib` keeps open.
            let (name, description) = unsafe { (i.name.to_string_lossy(), i.description.to_string_lossy()) };
            Ok(Provided { kind, name, description })
        })
        .collect()
}

unsafe extern "C" fn push_object(ctx: *mut c_void, obj: Object) {
    // SAFETY: `ctx` is the `Vec` of `create`, exclusively borrowed for the call.
    let v = unsafe { &mut *(ctx as *mut Vec<Object>) };
    v.push(obj);
}

/// Asks the plugin to create the objects of factory `name`.
fn create(lib: &Library, kind: Kind, name: &str, config: &Value, ctx: LayerContext) -> Result<Vec<Object>> {
    let json = config.to_string();
    let req = CreateRequest {
        kind: kind.code(),
        name: crate::plugin::abi::Str::new(name),
        config_json: crate::plugin::abi::Str::new(&json),
        dim: ctx.dim,
        index: ctx.index,
        seed: ctx.seed,
    };
    let mut objects: Vec<Object> = Vec::new();
    let sink = ObjectSink { ctx: &mut objects as *mut Vec<Object> as *mut c_void, put: push_object };
    // SAFETY: the header was checked in `load`; `req` and `sink` are valid for the call.
    call::call(&lib.name, |err| unsafe { (lib.header().create)(&req, sink, err) })?;
    if objects.iter().any(|o| o.handle.is_null()) {
        return Err(Error::Plugin { plugin: lib.name.clone(), message: format!("'{name}' created a null object") });
    }
    Ok(objects)
}

impl Plugin {
    /// Adds every provided factory to `reg` with `Source::Plugin(path)`. Nothing is added when
    /// any name is already taken.
    pub fn register_into(&self, reg: &mut Registry) -> Result<()> {
        let mut trial = reg.clone();
        for p in &self.provides {
            let (lib, name) = (self.lib.clone(), p.name.clone());
            let source = Source::Plugin(self.path.clone());
            match p.kind {
                Kind::Target => trial.add_target(
                    &p.name,
                    source,
                    &p.description,
                    Arc::new(move |cfg: &Value| {
                        let ctx = LayerContext { dim: 0, index: 0, seed: 0 };
                        let mut objs = create(&lib, Kind::Target, &name, cfg, ctx)?.into_iter();
                        let obj = single(&lib, objs.next(), objs.len())?;
                        Ok(Box::new(PluginTarget::new(lib.clone(), obj)?) as Box<dyn crate::Target>)
                    }),
                )?,
                Kind::Bijection => trial.add_bijection(
                    &p.name,
                    source,
                    &p.description,
                    Arc::new(move |ctx: &LayerContext, cfg: &Value| {
                        create(&lib, Kind::Bijection, &name, cfg, *ctx)?
                            .into_iter()
                            .map(|o| Ok(Box::new(PluginBijection::new(lib.clone(), o)?) as Box<dyn crate::Bijection>))
                            .collect()
                    }),
                )?,
                Kind::Kernel => trial.add_kernel(
                    &p.name,
                    source,
                    &p.description,
                    Arc::new(move |dim: usize, cfg: &Value| {
                        let ctx = LayerContext { dim, index: 0, seed: 0 };
                        let mut objs = create(&lib, Kind::Kernel, &name, cfg, ctx)?.into_iter();
                        let obj = single(&lib, objs.next(), objs.len())?;
                        Ok(Box::new(PluginKernel::new(lib.clone(), obj)?) as Box<dyn crate::Kernel>)
                    }),
                )?,
            }
        }
        *reg = trial;
        Ok(())
    }
}

/// The one object a target or kernel factory must make.
fn single(lib: &Library, first: Option<Object>, rest: usize) -> Result<Object> {
    match (first, rest) {
        (Some(o), 0) => Ok(o),
        _ => Err(Error::Plugin { plugin: lib.name.clone(), message: "factory must create exactly one object".into() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_check_names_both_versions_and_sizes() {
        let need = size_of::<Header>() as u32;
        check_prefix(HeaderPrefix { abi_version: ABI_VERSION, header_size: need }).unwrap();
        check_prefix(HeaderPrefix { abi_version: ABI_VERSION, header_size: need + 8 }).unwrap();
        let e = check_prefix(HeaderPrefix { abi_version: 7, header_size: need }).unwrap_err().to_string();
        assert!(e.contains("ABI 7") && e.contains(&format!("ABI {ABI_VERSION}")), "{e}");
        let e = check_prefix(HeaderPrefix { abi_version: ABI_VERSION, header_size: 8 }).unwrap_err().to_string();
        assert!(e.contains("8 bytes") && e.contains(&need.to_string()), "{e}");
    }

    #[test]
    fn missing_and_foreign_files_are_refused_not_fatal() {
        let e = load(Path::new("/nonexistent/libbootflow_x.so")).err().unwrap();
        assert!(matches!(e, LoadError::Truncated(_) | LoadError::FailedToLoad(_)), "{e}");
        let text = std::env::temp_dir().join(format!("bootflow-text-{}.so", std::process::id()));
        std::fs::write(&text, "not a library").unwrap();
        let e = load(&text).err().unwrap();
        // The system loader's reason is kept (glibc: "... file too short" or "invalid ELF header").
        assert!(matches!(&e, LoadError::FailedToLoad(m) if m.len() > "dlopen failed".len()), "{e}");
        std::fs::remove_file(&text).unwrap();
    }
}
