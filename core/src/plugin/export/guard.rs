//! Plugin side of every exported call: panics are caught and turned into an error status with a
//! message, the library's own panic hook is made quiet, objects that panicked are poisoned, and
//! raw pointers become slices only after their null/length checks.

use std::any::Any;
use std::cell::RefCell;
use std::ffi::c_void;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Once;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::{Error, Result};
use crate::plugin::abi::{Sink, Status, Str, encode_error, status};

thread_local! {
    /// Where the quiet hook leaves the location of the last panic on this thread.
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Replaces the panic hook of this library's copy of std (a cdylib has its own) by one that
/// prints nothing and records the location for the error message.
pub(crate) fn install_quiet_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            let at = info.location().map(|l| format!(" at {}:{}:{}", l.file(), l.line(), l.column()));
            LAST_PANIC.with(|p| *p.borrow_mut() = at);
        }))
    });
}

fn panic_message(payload: Box<dyn Any + Send>) -> String {
    let msg = if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-text panic payload".to_string()
    };
    let at = LAST_PANIC.with(|p| p.borrow_mut().take()).unwrap_or_default();
    format!("{msg}{at}")
}

/// Writes `text` to a sink.
pub(crate) fn put_text(sink: Sink, text: &str) {
    // SAFETY: the host made `sink` for this call; the text is borrowed only during `put`.
    unsafe { (sink.put)(sink.ctx, Str::new(text), std::ptr::null(), 0) }
}

/// Writes `text` and numbers to a sink.
pub(crate) fn put(sink: Sink, text: &str, values: &[f64]) {
    // SAFETY: the host made `sink` for this call; text and numbers are borrowed only during `put`.
    unsafe { (sink.put)(sink.ctx, Str::new(text), values.as_ptr(), values.len()) }
}

/// Runs `f`, catching panics; reports errors through `err`. Returns whether it panicked too.
fn run(err: Sink, f: impl FnOnce() -> Result<()>) -> (Status, bool) {
    install_quiet_hook();
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => (status::OK, false),
        Ok(Err(e)) => {
            let (code, msg) = encode_error(&e);
            put_text(err, &msg);
            (code, false)
        }
        Err(payload) => {
            put_text(err, &panic_message(payload));
            (status::PANIC, true)
        }
    }
}

/// An exported call that touches no object.
pub(crate) fn call(err: Sink, f: impl FnOnce() -> Result<()>) -> Status {
    run(err, f).0
}

/// What an object handle points to: the Rust object and whether a panic left it unusable.
pub(crate) struct Held<T> {
    obj: T,
    poisoned: AtomicBool,
}

impl<T> Held<T> {
    /// Moves `obj` to the heap; the pointer is released by [`destroy`].
    pub(crate) fn into_handle(obj: T) -> *mut c_void {
        Box::into_raw(Box::new(Held { obj, poisoned: AtomicBool::new(false) })) as *mut c_void
    }

    fn check(&self) -> Result<()> {
        if self.poisoned.load(Ordering::Acquire) {
            Err(Error::Other("object is unusable after an earlier panic".into()))
        } else {
            Ok(())
        }
    }
}

/// An exported call on a shared object.
///
/// # Safety
/// `obj` must be a live handle made by `Held::<T>::into_handle`.
pub(crate) unsafe fn with<T>(obj: *const c_void, err: Sink, f: impl FnOnce(&T) -> Result<()>) -> Status {
    // SAFETY: a live `Held<T>` handle by this function's contract.
    let held = unsafe { &*(obj as *const Held<T>) };
    let (code, panicked) = run(err, || {
        held.check()?;
        f(&held.obj)
    });
    if panicked {
        held.poisoned.store(true, Ordering::Release);
    }
    code
}

/// An exported call that needs exclusive access to the object.
///
/// # Safety
/// `obj` must be a live handle made by `Held::<T>::into_handle`, not used by anyone else during
/// the call.
pub(crate) unsafe fn with_mut<T>(obj: *mut c_void, err: Sink, f: impl FnOnce(&mut T) -> Result<()>) -> Status {
    // SAFETY: a live `Held<T>` handle, used by nobody else during the call (contract).
    let held = unsafe { &mut *(obj as *mut Held<T>) };
    let poisoned = &held.poisoned;
    let obj = &mut held.obj;
    let (code, panicked) = run(err, || {
        if poisoned.load(Ordering::Acquire) {
            return Err(Error::Other("object is unusable after an earlier panic".into()));
        }
        f(obj)
    });
    if panicked {
        poisoned.store(true, Ordering::Release);
    }
    code
}

/// Releases a handle; a panic in the object's destructor is swallowed (there is nobody to tell).
///
/// # Safety
/// `obj` must be a live handle made by `Held::<T>::into_handle`; it is dangling afterwards.
pub(crate) unsafe extern "C" fn destroy<T>(obj: *mut c_void) {
    install_quiet_hook();
    if !obj.is_null() {
        // SAFETY: non-null, made by `Held::into_handle` and destroyed only here (this function's contract).
        let boxed = unsafe { Box::from_raw(obj as *mut Held<T>) };
        let _ = catch_unwind(AssertUnwindSafe(move || drop(boxed)));
    }
}

/// `len` numbers at `p`.
///
/// # Safety
/// Unless null, `p` must point to `len` readable numbers that outlive the returned slice.
pub(crate) unsafe fn slice<'a>(p: *const f64, len: usize) -> Result<&'a [f64]> {
    if len == 0 {
        Ok(&[])
    } else if p.is_null() {
        Err(Error::Other("null input array".into()))
    } else {
        // SAFETY: non-null with `len > 0`; readable for `len` numbers by this function's contract.
        Ok(unsafe { std::slice::from_raw_parts(p, len) })
    }
}

/// `len` writable numbers at `p`.
///
/// # Safety
/// Unless null, `p` must point to `len` writable numbers not aliased during the returned borrow.
pub(crate) unsafe fn slice_mut<'a>(p: *mut f64, len: usize) -> Result<&'a mut [f64]> {
    if len == 0 {
        Ok(&mut [])
    } else if p.is_null() {
        Err(Error::Other("null output array".into()))
    } else {
        // SAFETY: non-null with `len > 0`; writable and unaliased for `len` numbers by this function's contract.
        Ok(unsafe { std::slice::from_raw_parts_mut(p, len) })
    }
}

/// Writes `value` through an out-pointer.
///
/// # Safety
/// Unless null, `p` must be valid for a write of `T`.
pub(crate) unsafe fn write<T>(p: *mut T, value: T) -> Result<()> {
    if p.is_null() {
        return Err(Error::Other("null output pointer".into()));
    }
    // SAFETY: non-null and valid for a write of `T` by this function's contract.
    unsafe { p.write(value) };
    Ok(())
}
