//! Tasks: spawning on the current reactor, joining, yielding.
//!
//! A task's future lives in its reactor's slab and is polled only there. Its waker is the
//! `Arc` of a small `Send + Sync` header; waking on the owner thread pushes onto the local run
//! queue, waking anywhere else onto the owner's remote queue (see `handle.rs`).

mod executor;
mod header;
mod join;
mod join_cell;
pub(crate) mod state;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

pub(crate) use executor::Executor;
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
