//! The part of a task shared with its `JoinHandle`: the state word, the result slot and the
//! join waker.
//!
//! Ownership of the result slot:
//! - before `COMPLETE` only the owning reactor touches it (it writes the result once);
//! - after `COMPLETE`, if `JOIN_INTEREST` was still set, the `JoinHandle` owns it: it takes the
//!   result when polled or drops it when dropped;
//! - if the `JoinHandle` was already gone when `COMPLETE` was set, the reactor drops the result
//!   at once. Exactly one side drops it: the loom model `join_handle` proves it.
//!
//! The join waker lives behind a mutex that is touched only when the `JOIN_WAKER` bit says a
//! waker is (or is being) stored, so a task nobody awaits completes without locking.

use std::any::Any;
use std::fmt;
use std::task::{Context, Poll, Waker};

use super::state::{Snapshot, State};
use crate::sync::{Mutex, UnsafeCell};

/// Why a task produced no output.
pub enum JoinError {
    /// The task was aborted (by `JoinHandle::abort` or by its reactor shutting down).
    Cancelled,
    /// The task panicked; the payload is what `std::panic::catch_unwind` caught.
    Panicked(Box<dyn Any + Send + 'static>),
}

impl JoinError {
    /// `true` when the task was aborted.
    pub fn is_cancelled(&self) -> bool {
        matches!(self, JoinError::Cancelled)
    }

    /// `true` when the task panicked.
    pub fn is_panic(&self) -> bool {
        matches!(self, JoinError::Panicked(_))
    }

    /// The panic payload, to re-raise it with `std::panic::resume_unwind`.
    pub fn into_panic(self) -> Option<Box<dyn Any + Send + 'static>> {
        match self {
            JoinError::Panicked(payload) => Some(payload),
            JoinError::Cancelled => None,
        }
    }
}

impl fmt::Debug for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JoinError::Cancelled => f.write_str("JoinError::Cancelled"),
            JoinError::Panicked(_) => f.write_str("JoinError::Panicked(..)"),
        }
    }
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JoinError::Cancelled => f.write_str("task was cancelled"),
            JoinError::Panicked(payload) => {
                let message = payload
                    .downcast_ref::<&str>()
                    .copied()
                    .or_else(|| payload.downcast_ref::<String>().map(String::as_str));
                match message {
                    Some(message) => write!(f, "task panicked: {message}"),
                    None => f.write_str("task panicked"),
                }
            }
        }
    }
}

impl std::error::Error for JoinError {}

/// What a finished task leaves for its `JoinHandle`.
pub(crate) type TaskResult<T> = Result<T, JoinError>;

/// State word, result slot and join waker of one task.
pub(crate) struct JoinCell<T> {
    pub(crate) state: State,
    result: UnsafeCell<Option<TaskResult<T>>>,
    join_waker: Mutex<Option<Waker>>,
}

impl<T> JoinCell<T> {
    pub(crate) fn new() -> Self {
        JoinCell {
            state: State::new(),
            result: UnsafeCell::new(None),
            join_waker: Mutex::new(None),
        }
    }

    /// Reactor side: stores the task's result, marks it complete and wakes the joiner.
    /// Called once, on the owning reactor.
    pub(crate) fn complete(&self, result: TaskResult<T>) {
        // SAFETY: before COMPLETE is set only the owning reactor (this caller) accesses the
        // slot, and `complete` runs once per task.
        self.result.with_mut(|slot| unsafe { *slot = Some(result) });
        let prev = self.state.transition_to_complete();
        if !prev.has_join_interest() {
            // The JoinHandle is gone and will never look: the result is ours to drop.
            // SAFETY: with JOIN_INTEREST cleared before COMPLETE, nobody else accesses the slot.
            let result = self.result.with_mut(|slot| unsafe { (*slot).take() });
            // On the reactor, outside the poll's `catch_unwind`: an output whose `Drop`
            // panics is the detached task's failure (as a panic in its poll is), not one that
            // unwinds out of the reactor thread and strands every other task's handle.
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(result)));
        } else if prev.has_join_waker() {
            let waker = self.join_waker.lock().unwrap().take();
            if let Some(waker) = waker {
                waker.wake();
            }
        }
    }

    /// JoinHandle side: takes the result once the task is complete, else registers `cx`'s
    /// waker. Must be called from the JoinHandle only, and not after it returned `Ready`.
    pub(crate) fn poll_join(&self, cx: &mut Context<'_>) -> Poll<TaskResult<T>> {
        let mut snapshot = self.state.load();
        if !snapshot.is_complete() {
            {
                let mut slot = self.join_waker.lock().unwrap();
                match slot.as_ref() {
                    Some(existing) if existing.will_wake(cx.waker()) => {}
                    _ => *slot = Some(cx.waker().clone()),
                }
                snapshot = self.state.set_join_waker();
            }
            if !snapshot.is_complete() {
                return Poll::Pending;
            }
        }
        // SAFETY: COMPLETE was observed with JOIN_INTEREST still held by us, so the slot is
        // ours alone (module docs).
        match self.result.with_mut(|slot| unsafe { (*slot).take() }) {
            Some(result) => Poll::Ready(result),
            None => Poll::Pending,
        }
    }

    /// JoinHandle side, on drop: gives up interest and, if the task already completed, drops
    /// its result (on the JoinHandle's thread).
    pub(crate) fn drop_join_handle(&self) {
        let prev: Snapshot = self.state.drop_join_interest();
        if prev.is_complete() {
            // SAFETY: COMPLETE was set while JOIN_INTEREST was held, so the reactor left the
            // slot to us and no one else touches it again.
            drop(self.result.with_mut(|slot| unsafe { (*slot).take() }));
        }
    }
}
