//! Timers: [`sleep`], [`sleep_until`], [`timeout`], and a coarse clock.
//!
//! Timers belong to the reactor that first polls them. Each reactor keeps a heap of deadlines and
//! folds the nearest one into the timeout of its single `io_uring_enter`, so arming a timer
//! costs no syscall.

mod timers;

use std::cell::{Cell, RefCell};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

pub use std::time::Instant;

use timers::TimerKey;
pub(crate) use timers::Timers;

use crate::current::{self, Current};
use crate::scheduler::{self, Shared};

/// A reactor's clock and timers.
pub(crate) struct Clock {
    now: Cell<Instant>,
    timers: RefCell<Timers>,
    /// Wakers of due timers, taken out before they are woken (reused).
    due: RefCell<Vec<Waker>>,
}

impl Clock {
    pub(crate) fn new() -> Clock {
        Clock {
            now: Cell::new(Instant::now()),
            timers: RefCell::new(Timers::new()),
            due: RefCell::new(Vec::new()),
        }
    }

    /// The earliest live timer deadline.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.timers.borrow_mut().next_deadline()
    }

    /// Refreshes the coarse clock and wakes every due timer.
    pub(crate) fn tick(&self) {
        self.now.set(Instant::now());
        let mut due = self.due.borrow_mut();
        self.timers.borrow_mut().take_due(self.now.get(), &mut due);
        for waker in due.drain(..) {
            waker.wake();
        }
    }
}

thread_local! {
    static CURRENT: Current<Clock> = const { Current::new() };
}

/// Makes `clock` this thread's clock (reactor start), or clears it (`None`, exit).
pub(crate) fn set_current(clock: Option<Rc<Clock>>) {
    current::set(&CURRENT, clock);
}

fn with_clock<R>(f: impl FnOnce(&Clock) -> R) -> Option<R> {
    current::with(&CURRENT, f)
}

/// The current reactor's clock, refreshed once per loop iteration: free to read, and at most
/// one loop iteration old. Off a reactor thread it is `Instant::now()`.
pub fn now() -> Instant {
    with_clock(|clock| clock.now.get()).unwrap_or_else(Instant::now)
}

/// `start + duration`, or at most thirty years after `start`: a configured timeout of [`Duration::MAX`] then means "never" instead of
/// a panic (tokio's `sleep` treats it the same way).
///
/// ```
/// use std::time::{Duration, Instant};
/// use ringhop_runtime::time::deadline_after;
/// let start = Instant::now();
/// assert_eq!(deadline_after(start, Duration::from_secs(1)), start + Duration::from_secs(1));
/// assert!(deadline_after(start, Duration::MAX) > start + Duration::from_secs(86_400 * 365));
/// ```
pub fn deadline_after(start: Instant, duration: Duration) -> Instant {
    // Linux's monotonic clock counts seconds in an i64 from boot: thirty years always fit.
    start + capped(duration)
}

/// [`deadline_after`] the coarse clock's [`now`]: the deadline of a timeout starting now.
pub fn deadline_in(duration: Duration) -> Instant {
    deadline_after(now(), duration)
}

/// `duration`, at most thirty years: what [`deadline_after`] adds. For a duration handed to
/// code that adds it to an [`Instant`] itself (hyper's timeouts, for one).
///
/// ```
/// use std::time::Duration;
/// use ringhop_runtime::time::capped;
/// assert_eq!(capped(Duration::from_secs(5)), Duration::from_secs(5));
/// assert!(std::time::Instant::now().checked_add(capped(Duration::MAX)).is_some());
/// ```
pub fn capped(duration: Duration) -> Duration {
    const FAR: Duration = Duration::from_secs(86_400 * 365 * 30);
    duration.min(FAR)
}

/// Waits until `duration` has passed.
///
/// # Panics
///
/// When first polled off a reactor thread (a plain thread, or a task of another runtime
/// such as `tokio-compat`'s side runtime) before its deadline: timers live on a reactor.
///
/// ```
/// use std::time::Duration;
/// let rt = ringhop_runtime::Runtime::builder().reactors(1).build().unwrap();
/// rt.block_on_local(|| async { ringhop_runtime::time::sleep(Duration::from_millis(5)).await });
/// ```
pub fn sleep(duration: Duration) -> Sleep {
    sleep_until(deadline_after(Instant::now(), duration))
}

/// Waits until `deadline`.
///
/// # Panics
///
/// When first polled off a reactor thread (a plain thread, or a task of another runtime
/// such as `tokio-compat`'s side runtime) before its deadline: timers live on a reactor.
pub fn sleep_until(deadline: Instant) -> Sleep {
    Sleep {
        deadline,
        timer: None,
    }
}

/// The future returned by [`sleep`] and [`sleep_until`].
///
/// It arms a timer on the reactor that first polls it, and is `Send + Sync`, so it can live
/// inside futures that must be (hyper's timer, for one). Polled or dropped on another thread,
/// it asks its reactor to check or remove the timer through the reactor's queue: correct,
/// only slower.
#[must_use = "futures do nothing unless awaited"]
pub struct Sleep {
    deadline: Instant,
    timer: Option<Armed>,
}

/// A timer registered with a reactor.
struct Armed {
    owner: Arc<Shared>,
    key: TimerKey,
    /// Only for polls from another thread: where the owner reports that the timer fired.
    fired_elsewhere: Option<Arc<AtomicBool>>,
}

impl Sleep {
    /// When this sleep ends.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }
}

/// Runs `f` on the current reactor's timers; `None` off any reactor.
fn with_timers<R>(f: impl FnOnce(&mut Timers) -> R) -> Option<R> {
    with_clock(|clock| f(&mut clock.timers.borrow_mut()))
}

/// Runs `f` on `owner`'s timers if called on its thread; `None` elsewhere.
fn with_owner_timers<R>(owner: &Arc<Shared>, f: impl FnOnce(&mut Timers) -> R) -> Option<R> {
    let on_owner = scheduler::with_current(|local| Arc::ptr_eq(&local.shared, owner));
    if on_owner != Some(true) {
        return None;
    }
    with_timers(f)
}

impl Future for Sleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let Some(armed) = &mut this.timer else {
            // The coarse clock (no clock read): a deadline it does not see passed yet is
            // armed, and the next tick, which reads the clock, fires it if it did pass.
            if now() >= this.deadline {
                return Poll::Ready(());
            }
            let owner = scheduler::current("time::sleep").shared.clone();
            let key = with_timers(|timers| timers.insert(this.deadline, cx.waker().clone()))
                .expect("a reactor thread has a clock");
            this.timer = Some(Armed {
                owner,
                key,
                fired_elsewhere: None,
            });
            return Poll::Pending;
        };
        match with_owner_timers(&armed.owner, |timers| timers.update(armed.key, cx.waker())) {
            Some(true) => Poll::Ready(()),
            Some(false) => Poll::Pending,
            None => armed.poll_elsewhere(cx),
        }
    }
}

impl Armed {
    /// Polled off the owning reactor: the owner refreshes the waker, or reports the firing.
    fn poll_elsewhere(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let fired = self.fired_elsewhere.get_or_insert_with(Default::default);
        if fired.load(Ordering::Acquire) {
            return Poll::Ready(());
        }
        let (key, waker, fired) = (self.key, cx.waker().clone(), fired.clone());
        let posted = self.owner.post(move || {
            if with_timers(|timers| timers.update(key, &waker)).unwrap_or(true) {
                fired.store(true, Ordering::Release);
                waker.wake();
            }
        });
        match posted {
            Ok(()) => Poll::Pending,
            // The reactor is gone and its timers with it: waiting would never end.
            Err(_) => Poll::Ready(()),
        }
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        let Some(Armed { owner, key, .. }) = self.timer.take() else {
            return;
        };
        if with_owner_timers(&owner, |timers| timers.remove(key)).is_none() {
            // A reactor that is gone took its timers with it: nothing left to remove.
            let _ = owner.post(move || {
                with_timers(|timers| timers.remove(key));
            });
        }
    }
}

/// The current reactor's earliest live timer deadline (a test hook; `None` off a reactor).
#[doc(hidden)]
pub fn debug_next_deadline() -> Option<Instant> {
    with_timers(Timers::next_deadline).flatten()
}

impl fmt::Debug for Sleep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sleep")
            .field("deadline", &self.deadline)
            .finish()
    }
}

/// Runs `future` for at most `duration`; on expiry the future is dropped (cancelling it) and
/// the result is [`Elapsed`].
///
/// # Panics
///
/// As [`sleep`]: when first polled off a reactor thread, unless `future` is ready at once.
///
/// ```
/// use std::time::Duration;
/// use ringhop_runtime::time;
/// let rt = ringhop_runtime::Runtime::builder().reactors(1).build().unwrap();
/// let result = rt.block_on_local(|| async {
///     time::timeout(Duration::from_millis(5), time::sleep(Duration::from_secs(60))).await
/// });
/// assert!(result.is_err());
/// ```
pub fn timeout<F: Future>(duration: Duration, future: F) -> Timeout<F> {
    Timeout {
        future,
        sleep: sleep(duration),
    }
}

/// The future returned by [`timeout`].
#[must_use = "futures do nothing unless awaited"]
pub struct Timeout<F> {
    future: F,
    sleep: Sleep,
}

impl<F: Future> Future for Timeout<F> {
    type Output = Result<F::Output, Elapsed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // SAFETY: `future` is structurally pinned and never moved out; `sleep` is Unpin.
        let this = unsafe { self.get_unchecked_mut() };
        // SAFETY: see above.
        let future = unsafe { Pin::new_unchecked(&mut this.future) };
        if let Poll::Ready(output) = future.poll(cx) {
            return Poll::Ready(Ok(output));
        }
        match Pin::new(&mut this.sleep).poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(Elapsed(()))),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// The error of a [`timeout`] whose duration passed first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Elapsed(());

impl fmt::Display for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("deadline has elapsed")
    }
}

impl std::error::Error for Elapsed {}

impl From<Elapsed> for std::io::Error {
    fn from(elapsed: Elapsed) -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::TimedOut, elapsed)
    }
}
