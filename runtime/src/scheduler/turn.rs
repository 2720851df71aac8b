//! The reactor loop's hand-off with other threads, as one function the reactor thread runs
//! and loom models run too (with a mock driver).
//!
//! One turn:
//! 1. drain the remote queue once, bounded (tasks woken elsewhere, posted closures);
//! 2. poll ready tasks (bounded by the reactor's budget, so completions are never starved),
//!    looking at the remote queue again every 32 polls while busy;
//! 3. run the work queued for right before the submit (batched sends), then submit queued
//!    I/O; when nothing is runnable the reactor parks first (park word, queue re-check) and
//!    this submit also waits for an event, the nearest timer or the eventfd;
//! 4. mark the reactor awake (before the next drain: see `park.rs`);
//! 5. take completions and fire due timers.
//!
//! Draining before polling matters for latency: a task woken remotely while the reactor was
//! parked is polled right after the wake-up, not after one more trip into the kernel.

use super::park::{Notify, ParkWord};
use super::remote::RemoteQueue;

/// Items drained per turn, so producers faster than the reactor cannot starve local tasks
/// and I/O.
const DRAIN_LIMIT: usize = 4096;

/// Task polls between two looks at the remote queue while tasks keep the reactor busy, so a
/// task woken from another thread waits for at most this many polls rather than the whole
/// budget (tokio looks at its inject queue every 31 ticks).
const REMOTE_CHECK_INTERVAL: usize = 32;

/// Whether the submit of a turn may sleep.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Wait {
    /// Submit only; come back at once.
    No,
    /// Nothing is runnable and the reactor announced it parks: sleep until an event, the
    /// nearest timer or a remote wake.
    Park,
}

/// What a turn drives: the executor, the driver and the timers of one reactor (or a model's
/// stand-ins).
pub(crate) trait Hooks {
    /// What other threads push.
    type Item;
    /// The loop should end.
    fn stopping(&self) -> bool;
    /// Handles one drained item: queues a woken task, runs a posted closure.
    fn take(&self, item: Self::Item);
    /// Task polls per turn before completions are taken in again.
    fn budget(&self) -> usize;
    /// Polls at most `max` ready tasks; returns how many it polled.
    fn run_tasks(&self, max: usize) -> usize;
    /// Runs the work queued for "right before the submit" (see `before_submit.rs`); it may
    /// queue I/O and wake tasks.
    fn before_submit(&self) {}
    /// Something is still runnable (the reactor must not sleep).
    fn has_runnable(&self) -> bool;
    /// Spins for a while if configured to; `true` when something arrived meanwhile.
    fn spin(&self) -> bool;
    /// Counts a park.
    fn parked(&self);
    /// Submits queued I/O, sleeping when `wait` says so.
    fn submit(&self, wait: Wait);
    /// Takes completions and fires due timers.
    fn complete(&self);
}

/// Runs turns until [`Hooks::stopping`].
pub(crate) fn run<H: Hooks, N: Notify, P: ParkWord>(
    remote: &RemoteQueue<H::Item, N, P>,
    hooks: &H,
) {
    while !hooks.stopping() {
        turn(remote, hooks);
    }
}

/// One turn (see the module docs).
pub(crate) fn turn<H: Hooks, N: Notify, P: ParkWord>(
    remote: &RemoteQueue<H::Item, N, P>,
    hooks: &H,
) {
    drain(remote, hooks);
    let budget = hooks.budget().max(1);
    let mut polled = 0;
    while polled < budget {
        let ran = hooks.run_tasks(REMOTE_CHECK_INTERVAL.min(budget - polled));
        polled += ran;
        if ran == 0 || polled >= budget {
            break;
        }
        // Still busy: let what other threads woke meanwhile in before the next polls.
        if !remote.is_empty() {
            drain(remote, hooks);
        }
    }
    if hooks.stopping() {
        return;
    }
    // Before the park decision: what runs here may wake tasks.
    hooks.before_submit();
    if hooks.has_runnable() || hooks.spin() {
        hooks.submit(Wait::No);
    } else {
        match remote.try_park() {
            Some(may_wait) => {
                hooks.parked();
                hooks.submit(if may_wait { Wait::Park } else { Wait::No });
            }
            None => hooks.submit(Wait::No),
        }
        remote.unpark();
    }
    hooks.complete();
}

/// Takes what other threads pushed, at most [`DRAIN_LIMIT`] items.
fn drain<H: Hooks, N: Notify, P: ParkWord>(remote: &RemoteQueue<H::Item, N, P>, hooks: &H) {
    for _ in 0..DRAIN_LIMIT {
        match remote.pop() {
            Some(item) => hooks.take(item),
            None => break,
        }
    }
}

/// Reactor exit: closes the queue, then cancels tasks and drops what was pushed until
/// neither is left. `cancel_all` cancels every task and returns whether any was live.
pub(crate) fn shutdown<T, N: Notify, P: ParkWord>(
    remote: &RemoteQueue<T, N, P>,
    mut cancel_all: impl FnMut() -> bool,
) {
    remote.close();
    loop {
        let had_tasks = cancel_all();
        // Posted closures that never ran are dropped here (spawns resolve as cancelled).
        let mut drained = false;
        while let Some(item) = remote.pop() {
            drained = true;
            drop(item);
        }
        if !drained && !had_tasks {
            break;
        }
    }
}
