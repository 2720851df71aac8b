//! The "current" value of a reactor thread, one per layer (the driver, the scheduler, the
//! clock): set by the reactor when it starts, cleared when it exits, read by that layer's
//! code without reaching through any other.

use std::cell::RefCell;
use std::rc::Rc;
use std::thread::LocalKey;

/// A thread-local slot: `thread_local! { static CURRENT: Current<T> = Current::new(); }`.
pub(crate) struct Current<T>(RefCell<Option<Rc<T>>>);

impl<T> Current<T> {
    pub(crate) const fn new() -> Self {
        Current(RefCell::new(None))
    }
}

/// Sets (reactor start) or clears (`None`, reactor exit) the slot. The old value is dropped
/// after the slot is released, so its drop may use the slot.
pub(crate) fn set<T: 'static>(key: &'static LocalKey<Current<T>>, value: Option<Rc<T>>) {
    let old = key.with(|current| std::mem::replace(&mut *current.0.borrow_mut(), value));
    drop(old);
}

/// Runs `f` with the value, or returns `None` off a reactor thread (or during thread exit).
#[inline]
pub(crate) fn with<T: 'static, R>(
    key: &'static LocalKey<Current<T>>,
    f: impl FnOnce(&T) -> R,
) -> Option<R> {
    key.try_with(|current| current.0.borrow().as_deref().map(f))
        .ok()
        .flatten()
}

/// The value; panics with a message naming `what` off a reactor thread.
pub(crate) fn get<T: 'static>(key: &'static LocalKey<Current<T>>, what: &str) -> Rc<T> {
    key.try_with(|current| current.0.borrow().clone())
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("{what} must be called on a ringhop reactor thread"))
}
