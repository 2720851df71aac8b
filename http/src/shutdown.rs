//! Per-reactor shutdown signal: set once by the server's signal watcher (posted to each
//! reactor), observed by the accept loop and by connections waiting between requests.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

thread_local! {
    static TRIGGERED: Cell<bool> = const { Cell::new(false) };
    static WAITERS: RefCell<Waiters> = const { RefCell::new(Waiters { slots: Vec::new(), free: Vec::new() }) };
}

struct Waiters {
    slots: Vec<Option<Waker>>,
    free: Vec<usize>,
}

/// Starts shutting down this reactor's servers: wakes every waiter, and ends the waits of
/// idle connections (which register nothing here: their idle deadline is enough).
pub(crate) fn trigger() {
    TRIGGERED.with(|t| t.set(true));
    ringhop_pipes::watchdog::end_idle_waits();
    let wakers: Vec<Waker> = WAITERS.with(|w| {
        let mut w = w.borrow_mut();
        w.free.clear();
        w.slots.drain(..).flatten().collect()
    });
    wakers.into_iter().for_each(Waker::wake);
}

/// Resets the flag (a new server run on this reactor).
pub(crate) fn reset() {
    TRIGGERED.with(|t| t.set(false));
}

pub(crate) fn is_triggered() -> bool {
    TRIGGERED.with(Cell::get)
}

/// Resolves once shutdown is triggered on this reactor.
pub(crate) struct Triggered {
    slot: Option<usize>,
}

pub(crate) fn triggered() -> Triggered {
    Triggered { slot: None }
}

impl Future for Triggered {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if is_triggered() {
            return Poll::Ready(());
        }
        let slot = self.slot;
        self.slot = Some(WAITERS.with(|w| {
            let mut w = w.borrow_mut();
            match slot {
                Some(i) if i < w.slots.len() => {
                    w.slots[i] = Some(cx.waker().clone());
                    i
                }
                _ => match w.free.pop() {
                    Some(i) => {
                        w.slots[i] = Some(cx.waker().clone());
                        i
                    }
                    None => {
                        w.slots.push(Some(cx.waker().clone()));
                        w.slots.len() - 1
                    }
                },
            }
        }));
        Poll::Pending
    }
}

impl Drop for Triggered {
    fn drop(&mut self) {
        if let Some(i) = self.slot {
            let _ = WAITERS.try_with(|w| {
                let mut w = w.borrow_mut();
                if i < w.slots.len() && w.slots[i].take().is_some() {
                    w.free.push(i);
                }
            });
        }
    }
}

/// Polls `primary`, and resolves to `None` if shutdown is triggered first.
pub(crate) fn unless_shutdown<F: Future>(primary: F) -> UnlessShutdown<F> {
    UnlessShutdown {
        primary,
        stop: triggered(),
    }
}

/// The future of [`unless_shutdown`]: a struct, not an `async fn`, whose state would hold
/// `primary` twice (it sits in every idle connection's task).
pub(crate) struct UnlessShutdown<F> {
    primary: F,
    stop: Triggered,
}

impl<F: Future> Future for UnlessShutdown<F> {
    type Output = Option<F::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // SAFETY: structural pinning of `primary`: it is never moved out of the pinned
        // `UnlessShutdown`, which has no `Drop` or `Unpin` impl of its own; `stop` is
        // `Unpin` and taken by `&mut` only.
        let this = unsafe { self.get_unchecked_mut() };
        // SAFETY: as above, `primary` stays where the pinned `UnlessShutdown` holds it.
        let primary = unsafe { Pin::new_unchecked(&mut this.primary) };
        if let Poll::Ready(output) = primary.poll(cx) {
            return Poll::Ready(Some(output));
        }
        Pin::new(&mut this.stop).poll(cx).map(|()| None)
    }
}
