//! The one place where ringhop chooses between std's and loom's synchronisation types.
//!
//! Every cross-thread hand-off (park flag, remote queue, task state, join cell) is written
//! against these names, so that `RUSTFLAGS="--cfg loom"` swaps in loom's instrumented types and
//! the models in `loom-tests/` explore every interleaving of the very same code.

// Not every build uses every name (the runtime needs no shimmed `Arc`; the models do).
#[allow(unused_imports)]
#[cfg(not(loom))]
pub(crate) use std::{
    sync::{
        atomic::{AtomicU8, AtomicUsize, Ordering},
        Arc, Condvar, Mutex,
    },
    thread,
};

#[allow(unused_imports)]
#[cfg(loom)]
pub(crate) use loom::{
    sync::{
        atomic::{AtomicU8, AtomicUsize, Ordering},
        Arc, Condvar, Mutex,
    },
    thread,
};

/// An `UnsafeCell` whose accesses go through closures, so loom can check them for data races.
#[cfg(not(loom))]
#[derive(Debug)]
pub(crate) struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

#[cfg(not(loom))]
impl<T> UnsafeCell<T> {
    pub(crate) const fn new(value: T) -> Self {
        UnsafeCell(std::cell::UnsafeCell::new(value))
    }

    /// Gives `f` a shared raw pointer; the caller upholds the aliasing rules.
    #[allow(dead_code)]
    pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
        f(self.0.get())
    }

    /// Gives `f` an exclusive raw pointer; the caller upholds the aliasing rules.
    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}

#[cfg(loom)]
pub(crate) use loom::cell::UnsafeCell;

/// The multi-producer queue behind a reactor's remote wakes and posted closures.
///
/// crossbeam's lock-free `SegQueue` in production; under loom a mutex-guarded `VecDeque`, which
/// has the same linearizable FIFO contract and lets loom see the hand-off.
#[cfg(not(loom))]
pub(crate) type MpscQueue<T> = crossbeam_queue::SegQueue<T>;

#[cfg(loom)]
pub(crate) struct MpscQueue<T>(loom::sync::Mutex<std::collections::VecDeque<T>>);

#[cfg(loom)]
impl<T> MpscQueue<T> {
    pub(crate) fn new() -> Self {
        MpscQueue(loom::sync::Mutex::new(std::collections::VecDeque::new()))
    }

    pub(crate) fn push(&self, value: T) {
        self.0.lock().unwrap().push_back(value);
    }

    pub(crate) fn pop(&self) -> Option<T> {
        self.0.lock().unwrap().pop_front()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.lock().unwrap().is_empty()
    }
}
