//! The park word: one atomic byte per reactor that decides when a remote push must write the
//! reactor's eventfd, and refuses pushes once the reactor is gone.
//!
//! Bits:
//! - [`AWAKE`]: the reactor is running and will drain its remote queue before it next waits.
//! - [`NOTIFIED`]: something was pushed onto the remote queue since the reactor last cleared
//!   the word.
//! - [`CLOSED`]: the reactor is shutting down; what it has not drained yet it never will.
//!
//! Protocol (every change is a read-modify-write, never a plain store — loom finds lost wakes
//! with a plain store):
//! - a producer pushes onto the queue, then `fetch_or(NOTIFIED)`. Only when the old word was
//!   0 (parked and not yet notified) does it write the eventfd, so a running reactor costs
//!   remote producers no syscall at all. When the old word has `CLOSED`, the reactor may have
//!   drained for the last time before the push: the producer takes back what is left in the
//!   queue and drops it (the push is refused).
//! - the reactor, before it waits, `swap(0)`: if `NOTIFIED` was set it must not wait.
//! - the reactor, after waking (or deciding not to wait), `swap(AWAKE)` *before* it drains
//!   the queue, so a push that lands during the drain leaves `NOTIFIED` behind for the next
//!   park.
//! - the reactor, when it exits its loop, `fetch_or(CLOSED)` and then drains a last time:
//!   every push ordered before that RMW is drained by the reactor, every push after it sees
//!   `CLOSED`. Nothing is stranded (a stranded spawn would leave its `JoinHandle` pending
//!   forever).

use crate::sync::{AtomicU8, Ordering};

/// The reactor is running and will look at its queue again before waiting.
pub(crate) const AWAKE: u8 = 0b001;
/// A producer pushed since the reactor last reset the word.
pub(crate) const NOTIFIED: u8 = 0b010;
/// The reactor is shutting down: pushes are refused.
pub(crate) const CLOSED: u8 = 0b100;

/// The reactor's wake-up signal (an eventfd in production, a permit in loom models).
pub(crate) trait Notify {
    /// Wakes the reactor from its wait; called at most once per park.
    fn notify(&self);
}

/// What a producer must do after its push.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AfterPush {
    /// The reactor is awake or already notified.
    Nothing,
    /// The reactor is parked: signal it.
    Notify,
    /// The reactor is closed: take back what is queued.
    Reclaim,
}

/// The moves of the park protocol. [`ParkFlag`] is the only implementation that ships; the
/// trait lets loom models run the real queue and reactor turn with broken variants, to show
/// the models catch them.
pub(crate) trait ParkWord: Send + Sync {
    /// A word for a reactor that starts awake.
    fn new() -> Self;
    /// Producer side, after pushing.
    fn after_push(&self) -> AfterPush;
    /// Reactor side, before waiting: `true` when it may wait. Either way the reactor calls
    /// [`ParkWord::unpark`] next.
    fn try_park(&self) -> bool;
    /// Reactor side, after waiting or deciding not to; must come before draining.
    fn unpark(&self);
    /// Reactor side, after its loop: refuse every later push. Must come before the last
    /// drain.
    fn close(&self);
    /// Whether [`ParkWord::close`] happened (a hint for producers, to skip a doomed push).
    fn is_closed(&self) -> bool;
}

/// One reactor's park word. See the module docs for the protocol.
#[derive(Debug)]
pub(crate) struct ParkFlag {
    word: AtomicU8,
}

impl ParkWord for ParkFlag {
    fn new() -> Self {
        ParkFlag {
            word: AtomicU8::new(AWAKE),
        }
    }

    fn after_push(&self) -> AfterPush {
        let old = self.word.fetch_or(NOTIFIED, Ordering::AcqRel);
        if old & CLOSED != 0 {
            AfterPush::Reclaim
        } else if old == 0 {
            AfterPush::Notify
        } else {
            AfterPush::Nothing
        }
    }

    fn try_park(&self) -> bool {
        // Already notified: stay AWAKE rather than open a window in which producers would
        // write the eventfd for nothing.
        if self.word.load(Ordering::Acquire) & NOTIFIED != 0 {
            return false;
        }
        self.word.swap(0, Ordering::AcqRel) & NOTIFIED == 0
    }

    fn unpark(&self) {
        // A swap, not an OR: it also clears NOTIFIED, which the drain that follows answers.
        // (CLOSED is set only after the reactor's last unpark.)
        self.word.swap(AWAKE, Ordering::AcqRel);
    }

    fn close(&self) {
        self.word.fetch_or(CLOSED, Ordering::AcqRel);
    }

    fn is_closed(&self) -> bool {
        self.word.load(Ordering::Acquire) & CLOSED != 0
    }
}
