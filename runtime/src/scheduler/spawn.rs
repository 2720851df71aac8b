//! Spawning local tasks, and the hand-off wake.

use std::future::Future;
use std::sync::Arc;

use crate::task::{Header, JoinHandle};

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
    let local = super::current("spawn_local");
    let header = Arc::new(Header::new(local.shared.clone()));
    let handle = JoinHandle::new(header.clone());
    local
        .executor
        .insert(header, future, &local.shared.counters);
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
                super::with_current(|local| local.executor.set_hand_off(previous));
            }
        }
    }
    let _restore = Restore(super::with_current(|local| {
        local.executor.set_hand_off(true)
    }));
    f()
}
