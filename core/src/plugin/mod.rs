//! Plugins: compiled libraries that add targets, bijections and kernels at run time.
//!
//! # Writing a plugin
//!
//! A plugin is a crate with `crate-type = ["cdylib", "rlib"]` that depends on `bootflow-core`,
//! has an ordinary registration function, and adds one line at its root:
//!
//! ```ignore
//! pub fn register(reg: &mut bootflow_core::Registry) -> bootflow_core::Result<()> {
//!     reg.add_target("my_target", Source::Builtin, "what it is", Arc::new(|cfg| ...))
//! }
//! bootflow_core::export_plugin!(name = "my_plugin", register = register);
//! ```
//!
//! Plugin code and host code only ever see the Rust traits; [`export`] turns the registered
//! factories into C tables and [`host`] turns the tables back into trait objects.
//!
//! # The ABI (version [`abi::ABI_VERSION`])
//!
//! - One exported static, [`abi::ENTRY_SYMBOL`] = `BOOTFLOW_PLUGIN`, of type [`abi::Header`]. Its
//!   first two fields, `abi_version: u32` and `header_size: u32`, are the same in every ABI. The
//!   host reads them alone first and refuses the library when the ABI differs or the header is
//!   smaller than this ABI's header, naming both numbers; only then does it read the rest: name,
//!   version, a `factories` function listing `(kind, name, description)` and one `create` entry.
//! - Objects are an opaque handle plus a function table of their kind ([`abi::TargetTable`],
//!   [`abi::BijectionTable`], [`abi::KernelTable`]). Every table starts with its own `size` and
//!   carries its own `destroy`: memory is freed by the side that allocated it.
//! - Slices cross as pointer + length (batches column-major, `dim x n`); configs as JSON text;
//!   results of unknown length (names, known means, test sets, kernel state, error messages)
//!   are copied out through a host callback ([`abi::Sink`]). No Rust type with a layout of its
//!   own (trait object, `String`, `Vec`, `Box`) crosses.
//! - Every exported function returns a [`abi::Status`] and catches panics; the SDK installs a
//!   quiet panic hook in the plugin's copy of std, so a panic prints nothing and becomes an error
//!   naming its message and location. An object that panicked is poisoned: later calls fail.
//! - Randomness crosses as `(seed, stream)`: the host draws `seed = rng::child_seed(rng)`, the
//!   plugin builds `rng::stream(seed, stream)`. A kernel reaches the host's log-density through a
//!   C callback ([`abi::DensityCallback`]). Bijection tapes stay plugin-owned pointers, freed by
//!   the table's `free_tape`, and are only ever handed back to the object that recorded them.
//! - Calls on `*const` handles may run concurrently (the host parallelises over batch shards);
//!   calls on `*mut` handles are exclusive. A plugin never starts a thread pool of its own.
//!
//! # Versioning
//!
//! Appending a field at the end of the header or of a table keeps the ABI number: the size
//! field tells the reader which fields exist (this host requires at least its own sizes). Any
//! other change (reordering, changing a signature or a meaning) bumps [`abi::ABI_VERSION`].
//!
//! # Lifetime
//!
//! Every host object made from a library (target, layer, kernel, tape) holds an `Arc` of it, so
//! the library stays loaded while any of them lives, whatever happens to the registry.

// Every `unsafe` block at the C boundary says why it is sound.
#![deny(clippy::undocumented_unsafe_blocks)]

pub mod abi;
mod elf;
pub mod export;
pub mod host;
pub mod search;
mod tables;

pub use host::{Kind, LoadError, Plugin, Provided, linked, load};
pub use search::{Discovery, Refused, SearchDir, discover, search_path};
