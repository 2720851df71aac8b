//! Tasks: the raw task (header, state word, join cell), joining, yielding.
//!
//! A task's future lives in its reactor's executor and is polled only there. Its waker is the
//! `Arc` of a small `Send + Sync` header; waking on the owner's thread pushes onto the local
//! run queue ([`LocalQueue`]), waking anywhere else goes to the owner's [`Schedule`]. Those
//! two traits are all this layer knows of the scheduler above it.

mod header;
mod join;
pub(crate) mod join_cell;
pub(crate) mod state;

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll};

pub(crate) use header::{scheduler_id, Header, TaskRef};
pub use join::{JoinHandle, TryJoin};
pub use join_cell::JoinError;

/// A reactor's scheduler as tasks see it from any thread: where to send a task woken away
/// from its reactor. Implemented by the scheduler layer; tasks know nothing else of it.
pub(crate) trait Schedule: Send + Sync + 'static {
    /// Queues `task`, woken on another thread, on this scheduler's remote queue (dropping it
    /// if the reactor is gone, which cancelled the task already).
    fn schedule_remote(&self, task: Arc<dyn TaskRef>);
}

/// The run queue of the reactor running on this thread, as tasks see it.
pub(crate) trait LocalQueue {
    /// The identity of the scheduler this queue belongs to (see [`scheduler_id`]).
    fn owner_id(&self) -> *const ();
    /// Queues a task of this scheduler woken on its own thread.
    fn push(&self, task: Arc<dyn TaskRef>);
}

thread_local! {
    /// The local run queue of the reactor on this thread, set for the reactor's lifetime.
    static LOCAL: RefCell<Option<Rc<dyn LocalQueue>>> = const { RefCell::new(None) };
}

/// Makes `queue` the run queue that wakes on this thread go to (reactor start), or clears it
/// (`None`, reactor exit).
pub(crate) fn set_local_queue(queue: Option<Rc<dyn LocalQueue>>) {
    LOCAL.with(|local| *local.borrow_mut() = queue);
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
