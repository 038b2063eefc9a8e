//! One object a plugin made: its opaque handle, its checked function table, and the library,
//! kept open for as long as the object lives. Destroys the object when dropped.

use std::ffi::c_void;
use std::sync::Arc;

use super::Library;
use crate::error::{Error, Result};
use crate::plugin::abi::{ABI_VERSION, Object};
use crate::plugin::tables::ObjectTable;

pub(crate) struct Handle<T: ObjectTable> {
    obj: *mut c_void,
    table: *const T,
    // Dropped after the object is destroyed (see `Drop`), which closes the library last.
    lib: Arc<Library>,
}

// SAFETY: every handle is a plugin-side `Box<dyn Target>`, `Box<dyn Bijection>` or
// `Box<dyn Kernel>`, all `Send + Sync`; the table is immutable data of the library, which `lib`
// keeps mapped. Entries that need exclusive access are only called through `&mut` wrappers.
unsafe impl<T: ObjectTable> Send for Handle<T> {}
// SAFETY: as for `Send`; `&self` only makes calls the tables allow concurrently.
unsafe impl<T: ObjectTable> Sync for Handle<T> {}

impl<T: ObjectTable> Handle<T> {
    /// Takes ownership of `obj`, after checking that its table is not null and at least as
    /// large as this ABI's `T`.
    pub(crate) fn new(lib: Arc<Library>, obj: Object) -> Result<Self> {
        let refuse = |message: String| Err(Error::Plugin { plugin: lib.name.clone(), message });
        if obj.table.is_null() {
            return refuse(format!("null {} table", T::KIND));
        }
        // SAFETY: every table starts with its `usize` size (the ABI's first rule), and the
        // plugin's table lives in the loaded library.
        let size = unsafe { (obj.table as *const usize).read() };
        if size < size_of::<T>() {
            return refuse(format!("{} table is {size} bytes, ABI {ABI_VERSION} needs {}", T::KIND, size_of::<T>()));
        }
        Ok(Handle { obj: obj.handle, table: obj.table as *const T, lib })
    }

    /// The function table.
    pub(crate) fn table(&self) -> &T {
        // SAFETY: checked in `new`; `lib` keeps it mapped for as long as `self` lives.
        unsafe { &*self.table }
    }

    /// The handle, for entries that take a shared object.
    pub(crate) fn shared(&self) -> *const c_void {
        self.obj
    }

    /// The handle, for entries that need exclusive access.
    pub(crate) fn exclusive(&mut self) -> *mut c_void {
        self.obj
    }

    /// The library the object came from.
    pub(crate) fn lib(&self) -> &Arc<Library> {
        &self.lib
    }

    /// The plugin's name, for messages.
    pub(crate) fn plugin(&self) -> &str {
        &self.lib.name
    }

    /// Another object of the same table and library (a kernel's clone).
    pub(crate) fn sibling(&self, handle: *mut c_void) -> Object {
        Object { handle, table: self.table as *const c_void }
    }
}

impl<T: ObjectTable> Drop for Handle<T> {
    fn drop(&mut self) {
        let destroy = self.table().destroy_fn();
        // SAFETY: the object is live and owned by this handle; nothing uses it after this call.
        unsafe { destroy(self.obj) }
    }
}
