//! The thread-local "current reactor": set for the lifetime of a reactor thread.

use std::cell::RefCell;
use std::rc::Rc;

use crate::driver::IoDriver;
use crate::reactor::Reactor;

thread_local! {
    static CURRENT: RefCell<Option<Rc<Reactor>>> = const { RefCell::new(None) };
}

/// Makes `reactor` current on this thread until [`exit`].
pub(crate) fn enter(reactor: Rc<Reactor>) {
    CURRENT.with(|current| *current.borrow_mut() = Some(reactor));
}

pub(crate) fn exit() {
    let reactor = CURRENT.with(|current| current.borrow_mut().take());
    drop(reactor);
}

/// Runs `f` with the current reactor, or returns `None` off any reactor thread.
#[inline]
pub(crate) fn with<R>(f: impl FnOnce(&Reactor) -> R) -> Option<R> {
    CURRENT
        .try_with(|current| current.borrow().as_deref().map(f))
        .ok()
        .flatten()
}

/// The current reactor; panics with a message naming `what` off a reactor thread.
pub(crate) fn expect(what: &str) -> Rc<Reactor> {
    CURRENT
        .try_with(|current| current.borrow().clone())
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("{what} must be called on a ringhop reactor thread"))
}

/// The current reactor's shared state and its runtime's blocking pool; panics with a message
/// naming `what` off a reactor thread.
pub(crate) fn blocking(
    what: &str,
) -> (
    std::sync::Arc<crate::handle::Shared>,
    std::sync::Arc<crate::blocking::BlockingPool>,
) {
    let reactor = expect(what);
    let shared = reactor.shared.clone();
    let pool = shared.blocking.clone();
    (shared, pool)
}

/// Runs `f` with the current reactor's driver, or returns `None` off any reactor thread.
#[inline]
pub(crate) fn with_driver<R>(f: impl FnOnce(&IoDriver) -> R) -> Option<R> {
    with(|reactor| f(&reactor.driver))
}

/// The current reactor's driver; panics with a message naming `what` off a reactor thread.
pub(crate) fn driver(what: &str) -> Rc<IoDriver> {
    CURRENT
        .try_with(|current| current.borrow().as_ref().map(|r| r.driver.clone()))
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("{what} must be called on a ringhop reactor thread"))
}
