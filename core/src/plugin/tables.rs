//! The object tables of the plugin ABI, each declared once. From one declaration
//! [`object_table!`] generates:
//!
//! - the `#[repr(C)]` table: `size`, `destroy`, then one `extern "C"` function per entry
//!   (object handle first, the entry's arguments, then the error [`Sink`]; returns a
//!   [`Status`]), then any extra fields;
//! - the plugin side: an exports trait with one method per entry (the object as a Rust
//!   reference, the same arguments, a `Result`), generic shims that catch panics, poison the
//!   object and report errors around it, and `Table::exported::<E>()` building the static table;
//! - the host side: one method per entry that calls the plugin and turns its status into a
//!   `Result`.
//!
//! Adding a function to a table is one line here plus its two bodies (export and host), and the
//! compiler checks both against this line. Fields are only ever appended (see
//! [`crate::plugin`]).

use std::ffi::c_void;

use crate::error::Result;
use crate::model::bijection::Bijection;
use crate::model::kernel::Kernel;
use crate::model::target::Target;
use crate::plugin::abi::{BijectionInfo, ChainBuffers, DensityCallback, Sink, Status, TargetInfo};

/// What the host needs of every object table: its kind's name and how to destroy an object.
pub(crate) trait ObjectTable: 'static {
    /// The object kind, for messages.
    const KIND: &'static str;
    /// The table's `destroy` entry.
    fn destroy_fn(&self) -> unsafe extern "C" fn(obj: *mut c_void);
}

/// Declares one object table; see the module docs. An entry's receiver is `shared` (callable
/// concurrently, `*const c_void` handle) or `exclusive` (`*mut c_void`, needs exclusive access).
macro_rules! object_table {
    (@handle shared) => { *const c_void };
    (@handle exclusive) => { *mut c_void };
    (@object shared $obj:ty) => { &$obj };
    (@object exclusive $obj:ty) => { &mut $obj };
    (@with shared) => { crate::plugin::export::guard::with };
    (@with exclusive) => { crate::plugin::export::guard::with_mut };
    (
        $(#[$meta:meta])*
        table $table:ident ($kind:literal) of $obj:ty, exports $exports:ident, shims $shims:ident {
            $(
                $(#[$fmeta:meta])*
                fn $name:ident($recv:ident $(, $arg:ident: $ty:ty)* $(,)?);
            )*
        }
        $(extra { $($(#[$emeta:meta])* $extra:ident: $ety:ty),* $(,)? })?
    ) => {
        $(#[$meta])*
        #[repr(C)]
        pub struct $table {
            /// `size_of` this table in the plugin; the table only grows at the end.
            pub size: usize,
            /// Releases the object.
            pub destroy: unsafe extern "C" fn(obj: *mut c_void),
            $(
                $(#[$fmeta])*
                pub $name: unsafe extern "C" fn(
                    obj: object_table!(@handle $recv), $($arg: $ty,)* err: Sink
                ) -> Status,
            )*
            $($($(#[$emeta])* pub $extra: $ety,)*)?
        }

        impl ObjectTable for $table {
            const KIND: &'static str = $kind;
            fn destroy_fn(&self) -> unsafe extern "C" fn(obj: *mut c_void) {
                self.destroy
            }
        }

        /// What a plugin-side implementation of this table provides, one method per entry.
        pub(crate) trait $exports {
            $(
                /// Body of the entry of the same name.
                ///
                /// # Safety
                /// The pointer arguments satisfy the contract of the table field.
                #[allow(clippy::too_many_arguments)]
                unsafe fn $name(obj: object_table!(@object $recv $obj) $(, $arg: $ty)*) -> Result<()>;
            )*
        }

        /// The `extern "C"` entries of a plugin's table, generic over its implementation.
        mod $shims {
            use super::*;
            $(
                #[allow(clippy::too_many_arguments)]
                pub(super) unsafe extern "C" fn $name<E: $exports>(
                    obj: object_table!(@handle $recv), $($arg: $ty,)* err: Sink
                ) -> Status {
                    // SAFETY: the host only passes handles this table's `create` made and has not
                    // destroyed, with arguments meeting the field's contract.
                    unsafe {
                        object_table!(@with $recv)(obj, err, |o: object_table!(@object $recv $obj)| {
                            E::$name(o $(, $arg)*)
                        })
                    }
                }
            )*
        }

        impl $table {
            /// The static table of the plugin-side implementation `E`.
            pub(crate) const fn exported<E: $exports>($($($extra: $ety),*)?) -> Self {
                $table {
                    size: size_of::<$table>(),
                    destroy: crate::plugin::export::guard::destroy::<$obj>,
                    $($name: $shims::$name::<E>,)*
                    $($($extra,)*)?
                }
            }

            $(
                /// Calls the entry of the same name in `plugin` and turns its status into a `Result`.
                ///
                /// # Safety
                /// `obj` is a live handle of this table; the pointer arguments satisfy the
                /// contract of the table field.
                #[allow(clippy::too_many_arguments)]
                pub(crate) unsafe fn $name(
                    &self, plugin: &str, obj: object_table!(@handle $recv) $(, $arg: $ty)*
                ) -> Result<()> {
                    // SAFETY: forwarded from this function's contract.
                    crate::plugin::host::call::call(plugin, |err| unsafe { (self.$name)(obj $(, $arg)*, err) })
                }
            )*
        }
    };
}

object_table! {
    /// Function table of a target. Batches are column-major `dim x n` arrays; every entry may be
    /// called concurrently from several threads.
    table TargetTable ("target") of Box<dyn Target>, exports TargetExports, shims target_shims {
        /// Writes the target's facts.
        fn info(shared, out: *mut TargetInfo);
        /// Puts each observable name (text only).
        fn observable_names(shared, out: Sink);
        /// Puts each known mean (name + one value).
        fn known_means(shared, out: Sink);
        /// Puts the test set once as `dim x n` numbers, or nothing.
        fn test_set(shared, out: Sink);
        /// `out[n]` = log p~ of each column; when `grad` is not null also `grad[dim x n]`.
        fn log_prob(shared, x: *const f64, dim: usize, n: usize, out: *mut f64, grad: *mut f64);
        /// `out[dim x n]` = exact samples from `rng::stream(seed, stream)`.
        fn sample(shared, n: usize, seed: u64, stream: u64, out: *mut f64);
        /// `out[n_observables x n]` = observables of each column.
        fn observables(shared, x: *const f64, dim: usize, n: usize, out: *mut f64);
    }
}

object_table! {
    /// Function table of a bijection. `inverse` selects the pass (0 forward, 1 inverse). A tape
    /// is an opaque pointer owned by the host once returned, released with `free_tape`, and only
    /// ever handed back to the object that made it.
    table BijectionTable ("bijection") of Box<dyn Bijection>, exports BijectionExports, shims bijection_shims {
        /// Writes the dimension and parameter count.
        fn info(shared, out: *mut BijectionInfo);
        /// Writes the `len == n_params` parameters to `out`.
        fn params(shared, out: *mut f64, len: usize);
        /// Replaces the parameters.
        fn set_params(exclusive, p: *const f64, len: usize);
        /// Writes `out[dim x n]` and `log_det[n]`; with `record != 0` also `*tape`.
        fn pass(shared, inverse: u8, input: *const f64, dim: usize, n: usize, record: u8, out: *mut f64,
            log_det: *mut f64, tape: *mut *mut c_void);
        /// Writes `g_in[dim x n]`; when `g_params` is not null ADDS the parameter cotangent into it.
        fn vjp(shared, inverse: u8, tape: *const c_void, g_out: *const f64, dim: usize, n: usize,
            g_log_det: *const f64, g_params: *mut f64, n_params: usize, g_in: *mut f64);
        /// As `pass`, carrying `score[dim x n]` through the pass into `score_out[dim x n]`
        /// (`Bijection::pass_with_score`).
        fn score_pass(shared, inverse: u8, input: *const f64, score: *const f64, dim: usize, n: usize, record: u8,
            out: *mut f64, log_det: *mut f64, score_out: *mut f64, tape: *mut *mut c_void);
    }
    extra {
        /// Releases a tape returned by `pass`.
        free_tape: unsafe extern "C" fn(tape: *mut c_void),
    }
}

object_table! {
    /// Function table of a kernel. Exclusive entries need exclusive access to the object.
    table KernelTable ("kernel") of Box<dyn Kernel>, exports KernelExports, shims kernel_shims {
        /// Writes 1 to `needs_grad` when the kernel uses gradients.
        fn info(shared, needs_grad: *mut u8);
        /// One transition with randomness from `rng::stream(seed, stream)`; the chain buffers
        /// are only written when it succeeds.
        fn step(exclusive, density: *const DensityCallback, chains: *const ChainBuffers, seed: u64, stream: u64);
        /// Turns step-size adaptation on or off.
        fn set_adapt(exclusive, on: u8);
        /// Puts each tuned quantity (name + one value).
        fn tuning(shared, out: Sink);
        /// Puts the state once (numbers only).
        fn state(shared, out: Sink);
        /// Restores a state put by `state`.
        fn set_state(exclusive, s: *const f64, len: usize);
        /// Writes an independent copy (same table) to `out`.
        fn clone(shared, out: *mut *mut c_void);
    }
}
