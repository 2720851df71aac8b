//! A reactor's remote queue: the only way other threads hand work to a reactor.
//!
//! Producers push, then consult the [`ParkFlag`]; the reactor is signalled through its
//! [`Notify`] only when it is parked and nobody signalled it yet. The reactor pops on its own
//! thread. This module is free of syscalls so loom can model it.

use crate::park::{Notify, ParkFlag};
use crate::sync::MpscQueue;

/// An MPSC queue plus the park flag and wake-up signal of the reactor that drains it.
pub(crate) struct RemoteQueue<T, N> {
    queue: MpscQueue<T>,
    park: ParkFlag,
    notifier: N,
}

impl<T, N: Notify> RemoteQueue<T, N> {
    pub(crate) fn new(notifier: N) -> Self {
        RemoteQueue {
            queue: MpscQueue::new(),
            park: ParkFlag::new(),
            notifier,
        }
    }

    /// Pushes `item` and wakes the reactor if (and only if) it is parked.
    pub(crate) fn push(&self, item: T) {
        self.queue.push(item);
        if self.park.notify_needed() {
            self.notifier.notify();
        }
    }

    /// Reactor side: takes the oldest item.
    pub(crate) fn pop(&self) -> Option<T> {
        self.queue.pop()
    }

    /// Whether nothing is queued (a hint: a push may be in progress).
    pub(crate) fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Reactor side: `Some(may_wait)` when the reactor announced it is parking (which allows
    /// at most one eventfd write), `None` when it stayed awake because it was already notified.
    /// `may_wait` is `false` when the queue turned out non-empty. Call [`RemoteQueue::unpark`]
    /// after the wait (or instead of it) and before draining.
    #[must_use]
    pub(crate) fn try_park(&self) -> Option<bool> {
        if !self.park.try_park() {
            return None;
        }
        // The flag alone suffices (see park.rs); the emptiness re-check is cheap and spares a
        // futile wait when a producer pushed but has not reached its fetch_or yet.
        Some(self.queue.is_empty())
    }

    /// Reactor side: marks the reactor awake; must precede the drain.
    pub(crate) fn unpark(&self) {
        self.park.unpark();
    }

    /// The reactor's wake-up signal.
    pub(crate) fn notifier(&self) -> &N {
        &self.notifier
    }
}
