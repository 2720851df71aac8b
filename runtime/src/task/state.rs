//! A task's state word, shared by its wakers, its reactor and its `JoinHandle`.
//!
//! Every transition is one read-modify-write, so concurrent wakers, an `abort()` from another
//! thread and the owning reactor never lose or duplicate an update.

use crate::sync::{AtomicUsize, Ordering};

/// The task sits in a run queue (local or remote). Set by the first wake, cleared by the
/// reactor just before it polls, so a task is queued at most once however often it is woken.
pub(crate) const SCHEDULED: usize = 1 << 0;
/// The task's future is gone and its result (output, panic or cancellation) is in the join
/// cell. Terminal: a complete task is never queued again, which also makes late wakes no-ops.
pub(crate) const COMPLETE: usize = 1 << 1;
/// A `JoinHandle` exists. Whoever clears it or sets `COMPLETE` second drops the output.
pub(crate) const JOIN_INTEREST: usize = 1 << 2;
/// The `JoinHandle` stored a waker in the join cell; the completer must take and wake it.
pub(crate) const JOIN_WAKER: usize = 1 << 3;
/// `abort()` was called: the reactor drops the future instead of polling it.
pub(crate) const ABORT: usize = 1 << 4;

/// A copy of the state word, read once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Snapshot(pub(crate) usize);

impl Snapshot {
    pub(crate) fn is_scheduled(self) -> bool {
        self.0 & SCHEDULED != 0
    }
    pub(crate) fn is_complete(self) -> bool {
        self.0 & COMPLETE != 0
    }
    pub(crate) fn has_join_interest(self) -> bool {
        self.0 & JOIN_INTEREST != 0
    }
    pub(crate) fn has_join_waker(self) -> bool {
        self.0 & JOIN_WAKER != 0
    }
    pub(crate) fn is_aborted(self) -> bool {
        self.0 & ABORT != 0
    }
}

/// The atomic state word.
#[derive(Debug)]
pub(crate) struct State(AtomicUsize);

impl State {
    /// A freshly spawned task: queued for its first poll, with a `JoinHandle`.
    pub(crate) fn new() -> Self {
        State(AtomicUsize::new(SCHEDULED | JOIN_INTEREST))
    }

    pub(crate) fn load(&self) -> Snapshot {
        Snapshot(self.0.load(Ordering::Acquire))
    }

    /// A wake: returns `true` when the caller must enqueue the task (it was neither queued
    /// nor complete).
    #[must_use]
    pub(crate) fn transition_to_scheduled(&self) -> bool {
        let prev = Snapshot(self.0.fetch_or(SCHEDULED, Ordering::AcqRel));
        !prev.is_scheduled() && !prev.is_complete()
    }

    /// The reactor is about to poll: clears `SCHEDULED` so a wake during the poll requeues it.
    pub(crate) fn transition_to_running(&self) -> Snapshot {
        Snapshot(self.0.fetch_and(!SCHEDULED, Ordering::AcqRel))
    }

    /// Requests cancellation; returns `true` when the caller must enqueue the task so its
    /// reactor sees the request.
    #[must_use]
    pub(crate) fn transition_to_aborted(&self) -> bool {
        let prev = Snapshot(self.0.fetch_or(ABORT | SCHEDULED, Ordering::AcqRel));
        !prev.is_scheduled() && !prev.is_complete()
    }

    /// The output is stored; returns the word as it was before.
    pub(crate) fn transition_to_complete(&self) -> Snapshot {
        Snapshot(self.0.fetch_or(COMPLETE, Ordering::AcqRel))
    }

    /// The `JoinHandle` goes away; returns the word as it was before.
    pub(crate) fn drop_join_interest(&self) -> Snapshot {
        Snapshot(
            self.0
                .fetch_and(!(JOIN_INTEREST | JOIN_WAKER), Ordering::AcqRel),
        )
    }

    /// The `JoinHandle` stored a waker; returns the word as it was before.
    pub(crate) fn set_join_waker(&self) -> Snapshot {
        Snapshot(self.0.fetch_or(JOIN_WAKER, Ordering::AcqRel))
    }
}
