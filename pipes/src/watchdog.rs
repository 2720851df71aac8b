//! The per-reactor watchdog: one task per reactor wakes once per [`TICK`] and asks every
//! watched connection whether one of its deadlines passed — Kestrel's heartbeat. A
//! connection carries its deadlines as plain values on the coarse clock; no timer is armed
//! or cancelled per read, per write or per request, and an idle reactor pays one wake-up
//! per second while something is watched (none otherwise).
//!
//! The registry holds weak references: a connection that ended is dropped from it at the
//! next tick, without unregistering. Each tick also lets the reactor's segment pool give
//! back what a burst left idle in it.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use ringhop_runtime::{self as rt, time};

use crate::segment::SegmentPool;

/// How often deadlines are checked: a limit fires at most this much late.
pub const TICK: Duration = Duration::from_secs(1);

/// Idle pooled segments the watchdog leaves alone (1 MiB of 4 KiB segments); the rest of
/// the reactor's idle pool goes back to the allocator at each tick.
const POOL_FLOOR: usize = 256;

/// Something with deadlines on the coarse clock.
pub trait Watched {
    /// Called once per tick with the reactor's coarse clock: act on every deadline that
    /// passed (cancel a read, cut a connection, ...). `false` ends the watch.
    fn check(&self, now: Instant) -> bool;

    /// Called by [`end_idle_waits`]: end, now, a wait that only idles (a connection between
    /// requests, whose deadline was set with [`Deadline::set_idle`]). Nothing by default.
    fn end_idle(&self) {}
}

thread_local! {
    static WATCHED: RefCell<Vec<Weak<dyn Watched>>> = const { RefCell::new(Vec::new()) };
    static TICKING: Cell<bool> = const { Cell::new(false) };
}

/// Watches `entry` from this reactor's watchdog (started on first use) until its `check`
/// returns `false` or it is dropped. Off a reactor (a test polling by hand) nothing is
/// watched: there is no clock to tick.
pub fn watch(entry: Weak<dyn Watched>) {
    if rt::try_current().is_none() {
        return;
    }
    WATCHED.with(|watched| watched.borrow_mut().push(entry));
    if !TICKING.with(|ticking| ticking.replace(true)) {
        drop(rt::spawn_local(tick()));
    }
}

/// Ends every idle wait this reactor's watchdog holds (deadlines set with
/// [`Deadline::set_idle`]) as if its deadline had passed: a server that shuts down closes
/// its idle connections at once. A connection registers nothing per wait for this; the
/// deadline it moves anyway is enough.
pub fn end_idle_waits() {
    // Outside the borrow, like a tick's checks.
    let entries: Vec<_> =
        WATCHED.with(|watched| watched.borrow().iter().filter_map(Weak::upgrade).collect());
    for entry in entries {
        entry.end_idle();
    }
}

/// Connections this reactor's watchdog holds (ended ones leave at the next tick).
pub fn watched() -> usize {
    WATCHED.with(|watched| watched.borrow().len())
}

async fn tick() {
    loop {
        time::sleep(TICK).await;
        let now = time::now();
        // Checked outside the borrow: a check may end connections, and those may watch
        // anew (their entries are merged back below).
        let mut entries = WATCHED.with(|watched| std::mem::take(&mut *watched.borrow_mut()));
        entries.retain(|entry| entry.upgrade().is_some_and(|entry| entry.check(now)));
        let empty = WATCHED.with(|watched| {
            let mut watched = watched.borrow_mut();
            entries.append(&mut watched);
            *watched = entries;
            watched.is_empty()
        });
        // What a burst left in the pool drains back to the allocator.
        let pool = SegmentPool::current();
        pool.decay(POOL_FLOOR);
        crate::segment::release_freed_memory();
        if empty && pool.idle() <= POOL_FLOOR {
            TICKING.with(|ticking| ticking.set(false));
            return;
        }
    }
}

/// A deadline on the coarse clock, checked by the reactor's watchdog: setting, moving or
/// clearing it arms no timer and makes no syscall, so a connection can keep one for its
/// whole life and move it on every request. It fires between its instant and one
/// [`TICK`] later.
///
/// ```
/// # let rt = ringhop_runtime::Runtime::builder().reactors(1).build().unwrap();
/// # rt.block_on_local(|| async {
/// use std::time::Duration;
/// use ringhop_pipes::watchdog::Deadline;
/// let deadline = Deadline::new();
/// deadline.set(Some(ringhop_runtime::time::now() + Duration::from_millis(10)));
/// // Never ready: the deadline ends the wait (at the watchdog's next tick).
/// let waited = deadline.timeout(std::future::pending::<()>()).await;
/// assert!(waited.is_err());
/// # });
/// ```
pub struct Deadline(Rc<DeadlineState>);

impl std::fmt::Debug for Deadline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deadline")
            .field("at", &self.0.at.get())
            .field("expired", &self.0.expired.get())
            .finish()
    }
}

#[derive(Default)]
struct DeadlineState {
    at: Cell<Option<Instant>>,
    expired: Cell<bool>,
    waker: Cell<Option<Waker>>,
    watched: Cell<bool>,
    /// Set by [`Deadline::set_idle`]: [`end_idle_waits`] ends the wait too.
    idle: Cell<bool>,
}

/// The deadline passed before the future completed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Expired;

impl Default for Deadline {
    fn default() -> Self {
        Deadline::new()
    }
}

impl Deadline {
    /// A deadline that is not set.
    pub fn new() -> Deadline {
        Deadline(Rc::new(DeadlineState::default()))
    }

    /// Sets (or, with `None`, clears) the instant, and forgets an earlier expiry. The first
    /// `Some` registers it with this reactor's watchdog.
    pub fn set(&self, at: Option<Instant>) {
        self.set_with(at, false);
    }

    /// [`set`](Self::set) for a wait that only idles: it also ends, at once, when
    /// [`end_idle_waits`] runs on this reactor (shutdown).
    pub fn set_idle(&self, at: Option<Instant>) {
        self.set_with(at, true);
    }

    fn set_with(&self, at: Option<Instant>, idle: bool) {
        self.0.at.set(at);
        self.0.expired.set(false);
        self.0.idle.set(idle);
        if at.is_some() && !self.0.watched.replace(true) {
            let watched: Weak<DeadlineState> = Rc::downgrade(&self.0);
            watch(watched);
        }
    }

    /// `Ready` once the deadline passed; otherwise remembers the waker to wake then.
    pub fn poll_expired(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.0.expired.get() {
            return Poll::Ready(());
        }
        let waker = self.0.waker.take().filter(|w| w.will_wake(cx.waker()));
        self.0
            .waker
            .set(Some(waker.unwrap_or_else(|| cx.waker().clone())));
        Poll::Pending
    }

    /// Runs `future` until it completes or the deadline passes.
    pub fn timeout<F: Future>(&self, future: F) -> Timeout<'_, F> {
        Timeout {
            deadline: self,
            future,
        }
    }
}

/// The future of [`Deadline::timeout`]: a plain struct rather than an `async fn`, whose
/// state would keep the wrapped future twice (it sits in every idle connection's task).
#[must_use = "futures do nothing unless awaited"]
#[derive(Debug)]
pub struct Timeout<'a, F> {
    deadline: &'a Deadline,
    future: F,
}

impl<F: Future> Future for Timeout<'_, F> {
    type Output = Result<F::Output, Expired>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // SAFETY: structural pinning of `future`: it is never moved out of the pinned
        // `Timeout`, which has no `Drop` and no `Unpin` impl of its own; `deadline` is a
        // shared reference, never pinned.
        let this = unsafe { self.get_unchecked_mut() };
        // SAFETY: as above, `future` stays where the pinned `Timeout` holds it.
        let future = unsafe { Pin::new_unchecked(&mut this.future) };
        if let Poll::Ready(output) = future.poll(cx) {
            return Poll::Ready(Ok(output));
        }
        this.deadline.poll_expired(cx).map(|()| Err(Expired))
    }
}

impl DeadlineState {
    fn expire(&self) {
        self.at.set(None);
        self.expired.set(true);
        if let Some(waker) = self.waker.take() {
            waker.wake();
        }
    }
}

impl Watched for DeadlineState {
    fn check(&self, now: Instant) -> bool {
        if self.at.get().is_some_and(|at| at <= now) {
            self.expire();
        }
        true
    }

    fn end_idle(&self) {
        if self.idle.get() && self.at.get().is_some() {
            self.expire();
        }
    }
}
