//! Where a woken pipe reader or writer continues.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::Waker;

use ringhop_runtime::ReactorHandle;

static CROSS_THREAD_WAKES: AtomicU64 = AtomicU64::new(0);

/// Continuations that had to be posted to their reactor from another thread, process-wide.
/// Same-reactor pipes never add to it.
pub fn cross_thread_wakes() -> u64 {
    CROSS_THREAD_WAKES.load(Ordering::Relaxed)
}

/// Decides where a pipe's waiting reader (or writer) is woken — the ReactorPipeScheduler
/// analog.
///
/// - `Inline`: the side that made progress calls `wake()` directly, on its own thread.
/// - `Reactor(handle)`: the wake runs on that reactor: directly when already there, else
///   posted to it. A ringhop task is always polled on its own reactor anyway; `Reactor`
///   additionally guarantees that any waker (say, of another executor) is invoked there.
///
/// Pipes created on a reactor default to `Reactor(current)`, elsewhere to `Inline`.
#[derive(Clone, Default)]
pub enum PipeScheduler {
    /// Wake on the thread that made progress.
    #[default]
    Inline,
    /// Wake on this reactor.
    Reactor(ReactorHandle),
}

impl PipeScheduler {
    /// `Reactor(current)` on a reactor thread, `Inline` elsewhere.
    pub fn current() -> PipeScheduler {
        ringhop_runtime::try_current().map_or(PipeScheduler::Inline, PipeScheduler::Reactor)
    }

    /// `deferrable`: the waker may be a transport's send pump (see `Shared::reader_sends`).
    pub(crate) fn schedule(&self, waker: Waker, deferrable: bool) {
        match self {
            PipeScheduler::Reactor(handle) if !handle.is_current() => {
                CROSS_THREAD_WAKES.fetch_add(1, Ordering::Relaxed);
                // The waiter may not be a task of that reactor (pipe ends are `Send`): if the
                // reactor shut down and refuses the post, or drops it unrun, the guard wakes
                // the waiter where it is dropped rather than losing the wake.
                let wake = WakeOnDrop(Some(waker));
                let _ = handle.post(move || drop(wake));
            }
            // A transport's send pump on this reactor is not woken at all: its connection
            // sends right before the reactor submits, once for everything this turn flushed.
            _ if deferrable && crate::transport::defer_send(&waker) => {}
            // Woken here: the woken side runs right after the current task (see
            // `ringhop_runtime::hand_off`), while the bytes it is about to read are in cache.
            _ => ringhop_runtime::hand_off(|| waker.wake()),
        }
    }
}

/// A wake that happens when it is dropped: run by the reactor, or dropped unrun.
struct WakeOnDrop(Option<Waker>);

impl Drop for WakeOnDrop {
    fn drop(&mut self) {
        if let Some(waker) = self.0.take() {
            waker.wake();
        }
    }
}

impl fmt::Debug for PipeScheduler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PipeScheduler::Inline => f.write_str("Inline"),
            PipeScheduler::Reactor(handle) => write!(f, "Reactor({})", handle.index()),
        }
    }
}
