//! The park flag: one atomic word per reactor that decides when a remote wake must write the
//! reactor's eventfd.
//!
//! Bits:
//! - [`AWAKE`]: the reactor is running and will drain its remote queue before it next waits.
//! - [`NOTIFIED`]: something was pushed onto the remote queue since the reactor last cleared the
//!   word.
//!
//! Protocol (every change is a read-modify-write, never a plain store — loom finds lost wakes
//! with a plain store):
//! - a producer pushes onto the queue, then `fetch_or(NOTIFIED)`; only when the old word was 0
//!   (parked and not yet notified) does it write the eventfd. A running reactor therefore costs
//!   remote producers no syscall at all.
//! - the reactor, before it waits, `swap(0)`: if `NOTIFIED` was set it must not wait.
//! - the reactor, after waking (or deciding not to wait), `swap(AWAKE)` *before* it drains the
//!   queue, so a push that lands during the drain leaves `NOTIFIED` behind for the next park.

use crate::sync::{AtomicU8, Ordering};

/// The reactor is running and will look at its queue again before waiting.
pub(crate) const AWAKE: u8 = 0b01;
/// A producer pushed since the reactor last reset the word.
pub(crate) const NOTIFIED: u8 = 0b10;

/// The reactor's wake-up signal (an eventfd in production, a permit in loom models).
pub(crate) trait Notify {
    /// Wakes the reactor from its wait; called at most once per park.
    fn notify(&self);
}

/// One reactor's park word. See the module docs for the protocol.
#[derive(Debug)]
pub(crate) struct ParkFlag {
    word: AtomicU8,
}

impl ParkFlag {
    /// A flag for a reactor that starts awake.
    pub(crate) fn new() -> Self {
        ParkFlag {
            word: AtomicU8::new(AWAKE),
        }
    }

    /// Producer side, after pushing: returns `true` when the caller must signal the reactor.
    #[must_use]
    pub(crate) fn notify_needed(&self) -> bool {
        self.word.fetch_or(NOTIFIED, Ordering::AcqRel) == 0
    }

    /// Reactor side, before waiting: returns `true` when the reactor may wait (nothing was
    /// pushed since it last woke). Either way the reactor must call [`ParkFlag::unpark`] next.
    #[must_use]
    pub(crate) fn try_park(&self) -> bool {
        // Already notified: stay AWAKE rather than open a window in which producers would
        // write the eventfd for nothing.
        if self.word.load(Ordering::Acquire) & NOTIFIED != 0 {
            return false;
        }
        self.word.swap(0, Ordering::AcqRel) & NOTIFIED == 0
    }

    /// Reactor side, after waiting or deciding not to: marks the reactor awake. Must come
    /// before draining the queue.
    pub(crate) fn unpark(&self) {
        self.word.swap(AWAKE, Ordering::AcqRel);
    }
}
