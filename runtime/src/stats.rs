//! Per-reactor counters: the evidence behind ringhop's invariants (no foreign poll, no
//! eventfd write while awake).

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters of one reactor, written by that reactor (and, for eventfd writes, by producers).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) polls: AtomicU64,
    pub(crate) off_reactor_polls: AtomicU64,
    pub(crate) remote_wakes: AtomicU64,
    pub(crate) posts: AtomicU64,
    pub(crate) eventfd_writes: AtomicU64,
    pub(crate) parks: AtomicU64,
    pub(crate) enters: AtomicU64,
    pub(crate) submissions: AtomicU64,
    pub(crate) tasks_spawned: AtomicU64,
    pub(crate) tasks_finished: AtomicU64,
}

impl Counters {
    /// Adds one from the owning reactor, the only writer: a plain load and store, no locked
    /// instruction on the hot path.
    #[inline]
    pub(crate) fn bump_local(counter: &AtomicU64) {
        counter.store(counter.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> ReactorStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ReactorStats {
            polls: get(&self.polls),
            off_reactor_polls: get(&self.off_reactor_polls),
            remote_wakes: get(&self.remote_wakes),
            posts: get(&self.posts),
            eventfd_writes: get(&self.eventfd_writes),
            parks: get(&self.parks),
            enters: get(&self.enters),
            submissions: get(&self.submissions),
            live_tasks: get(&self.tasks_spawned).saturating_sub(get(&self.tasks_finished)),
        }
    }
}

/// A snapshot of one reactor's counters, from [`ReactorHandle::stats`](crate::ReactorHandle::stats).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReactorStats {
    /// Task polls on this reactor.
    pub polls: u64,
    /// Tasks of another reactor that reached this reactor's run queue (they are not polled
    /// here but handed back to their owner). Invariant: always 0.
    pub off_reactor_polls: u64,
    /// Tasks woken from other threads, drained from the remote queue.
    pub remote_wakes: u64,
    /// Closures posted from any thread, drained from the remote queue.
    pub posts: u64,
    /// Writes to this reactor's eventfd: bounded by `parks`, not by remote wakes.
    pub eventfd_writes: u64,
    /// Times the reactor announced it was parking (cleared its park flag to wait). Each park
    /// allows at most one eventfd write, so `eventfd_writes <= parks` always holds.
    pub parks: u64,
    /// Trips into the kernel to submit or wait: `io_uring_enter` calls, or `epoll_wait`
    /// calls under epoll.
    pub enters: u64,
    /// I/O submitted: SQEs queued (io_uring), or syscalls ops made (epoll).
    pub submissions: u64,
    /// Tasks spawned on this reactor and not finished yet.
    pub live_tasks: u64,
}
