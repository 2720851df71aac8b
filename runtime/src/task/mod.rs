//! Tasks: spawning on the current reactor, joining, yielding.
//!
//! A task's future lives in its reactor's slab and is polled only there. Its waker is the
//! `Arc` of a small `Send + Sync` header; waking on the owner thread pushes onto the local run
//! queue, waking anywhere else onto the owner's remote queue (see `handle.rs`).

mod header;
mod join;
mod join_cell;
pub(crate) mod state;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

pub(crate) use header::{Header, TaskRef};
pub use join::{JoinHandle, TryJoin};
pub use join_cell::JoinError;

use crate::context;

/// Spawns a `!Send` future on the current reactor and returns a handle to its output.
///
/// The future is polled only on this reactor's thread, first at the reactor's next turn.
///
/// # Panics
///
/// When called outside a ringhop reactor.
pub fn spawn_local<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    let reactor = context::expect("spawn_local");
    let header = Arc::new(Header::new(reactor.shared.clone()));
    let handle = JoinHandle::new(header.clone());
    reactor
        .executor
        .insert(header, future, &reactor.shared.counters);
    handle
}

/// Runs `f`, and makes a task of this reactor that `f` wakes run next: before the tasks
/// already queued, right after the task being polled returns (a hand-off). Elsewhere, or
/// outside a task's poll, it just runs `f`.
///
/// For producer → consumer hand-offs where the consumer should see the data while it is in
/// cache: ringhop's pipes wake their reader and writer this way, so a request goes recv pump →
/// connection → send pump back to back instead of queueing behind every other ready
/// connection three times. Ordinary wakes stay FIFO: making every wake a hand-off made
/// hyper's HTTP/2 (connection and stream tasks waking each other) slower by a quarter. At
/// most 4 hand-offs run in a row before the queue gets a turn, and a task waking itself
/// goes to the back.
///
/// ```
/// use std::cell::RefCell;
/// use std::rc::Rc;
/// let rt = ringhop_runtime::Runtime::builder().reactors(1).build().unwrap();
/// let order = rt.block_on_local(|| async {
///     let order = Rc::new(RefCell::new(Vec::new()));
///     let (tx, rx) = (order.clone(), order.clone());
///     let waker = Rc::new(RefCell::new(None));
///     let slot = waker.clone();
///     let mut woken = false;
///     let consumer = ringhop_runtime::spawn_local(std::future::poll_fn(move |cx| {
///         if woken {
///             rx.borrow_mut().push("consumer");
///             return std::task::Poll::Ready(());
///         }
///         woken = true;
///         *slot.borrow_mut() = Some(cx.waker().clone());
///         std::task::Poll::Pending
///     }));
///     ringhop_runtime::yield_now().await; // the consumer waits
///     let producer = ringhop_runtime::spawn_local(async move {
///         let waker: std::task::Waker = waker.borrow_mut().take().unwrap();
///         ringhop_runtime::hand_off(|| waker.wake());
///     });
///     let other = ringhop_runtime::spawn_local(async move { tx.borrow_mut().push("other") });
///     other.await;
///     producer.await;
///     consumer.await;
///     let order = order.borrow().clone();
///     order
/// });
/// assert_eq!(order, ["consumer", "other"]);
/// ```
pub fn hand_off<R>(f: impl FnOnce() -> R) -> R {
    /// Restores the flag even if `f` panics.
    struct Restore(Option<bool>);
    impl Drop for Restore {
        fn drop(&mut self) {
            if let Some(previous) = self.0 {
                context::with(|reactor| reactor.executor.set_hand_off(previous));
            }
        }
    }
    let _restore = Restore(context::with(|reactor| reactor.executor.set_hand_off(true)));
    f()
}

/// Yields to the reactor once: the task goes to the back of the run queue, so every other
/// ready task runs first. Completions and remote wakes are taken in at the latest when the
/// reactor's poll budget runs out, so a task looping on `yield_now` never starves I/O.
pub fn yield_now() -> YieldNow {
    YieldNow { yielded: false }
}

/// The future returned by [`yield_now`].
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct YieldNow {
    yielded: bool,
}

impl Future for YieldNow {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.yielded {
            return Poll::Ready(());
        }
        self.yielded = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}
