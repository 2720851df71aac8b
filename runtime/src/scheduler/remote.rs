//! A reactor's remote queue: the only way other threads hand work to a reactor.
//!
//! Producers push, then consult the park word; the reactor is signalled through its
//! [`Notify`] only when it is parked and nobody signalled it yet, and a push that lands after
//! the reactor closed is refused. The reactor pops on its own thread. This module is free of
//! syscalls so loom can model it.

use super::park::{AfterPush, Notify, ParkFlag, ParkWord};
use crate::sync::MpscQueue;

/// The reactor is gone: the pushed item was dropped, not delivered.
#[derive(Debug)]
pub(crate) struct Closed;

/// An MPSC queue plus the park word and wake-up signal of the reactor that drains it.
pub(crate) struct RemoteQueue<T, N, P = ParkFlag> {
    queue: MpscQueue<T>,
    park: P,
    notifier: N,
}

impl<T, N: Notify, P: ParkWord> RemoteQueue<T, N, P> {
    pub(crate) fn new(notifier: N) -> Self {
        RemoteQueue {
            queue: MpscQueue::new(),
            park: P::new(),
            notifier,
        }
    }

    /// Pushes `item` and wakes the reactor if (and only if) it is parked. After the reactor
    /// closed, the item is dropped here (with anything else still queued) and `Err` returned.
    pub(crate) fn push(&self, item: T) -> Result<(), Closed> {
        self.queue.push(item);
        match self.park.after_push() {
            AfterPush::Nothing => Ok(()),
            AfterPush::Notify => {
                self.notifier.notify();
                Ok(())
            }
            AfterPush::Reclaim => {
                // The reactor's last drain may have run before our push: whatever is queued
                // now would never be taken. The queue is MPMC, so racing that drain is fine.
                while let Some(item) = self.queue.pop() {
                    drop(item);
                }
                Err(Closed)
            }
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

    /// Reactor side, at exit: refuses later pushes. Drain once more afterwards.
    pub(crate) fn close(&self) {
        self.park.close();
    }

    /// Whether the reactor closed its queue.
    pub(crate) fn is_closed(&self) -> bool {
        self.park.is_closed()
    }

    /// The reactor's wake-up signal.
    pub(crate) fn notifier(&self) -> &N {
        &self.notifier
    }
}
