//! The shared, `Send + Sync` half of a task: join cell, owner and slab key. Its `Arc` is the
//! task's waker; the future itself stays in the owning reactor's slab.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};

use futures_task::ArcWake;

use super::join_cell::{JoinCell, TaskResult};
use super::state::State;
use super::{Schedule, LOCAL};
use std::sync::Arc;

/// What a run queue holds: any task, type-erased.
pub(crate) trait TaskRef: Send + Sync {
    fn state(&self) -> &State;
    /// The task's key in its reactor's slab.
    fn key(&self) -> usize;
    /// The scheduler (reactor) the task belongs to.
    fn owner(&self) -> &Arc<dyn Schedule>;
}

/// The identity of a scheduler, comparable with `LocalQueue::owner_id`.
pub(crate) fn scheduler_id(owner: &Arc<dyn Schedule>) -> *const () {
    Arc::as_ptr(owner).cast::<()>()
}

pub(crate) struct Header<T> {
    pub(crate) cell: JoinCell<T>,
    owner: Arc<dyn Schedule>,
    /// Written once by the owning reactor when it stores the future, read only by it.
    key: AtomicUsize,
}

// SAFETY: `Header<T>` crosses threads inside wakers. Its atomics, mutex and `Arc<Shared>` are
// thread-safe; the result slot (which may hold a `!Send` T) is only touched by the owning
// reactor and by the `JoinHandle`, which is `Send` only when `T: Send` (see join_cell.rs) —
// or, for `spawn_blocking`, whose `T: Send` is required, by the pool thread that runs the job.
// When the last `Arc` goes, the slot is empty: the result was taken or dropped by one of those
// two parties first.
unsafe impl<T> Send for Header<T> {}
// SAFETY: as for `Send`: shared access is only to thread-safe fields.
unsafe impl<T> Sync for Header<T> {}

impl<T> Header<T> {
    pub(crate) fn new(owner: Arc<dyn Schedule>) -> Self {
        Header {
            cell: JoinCell::new(),
            owner,
            key: AtomicUsize::new(usize::MAX),
        }
    }

    pub(crate) fn set_key(&self, key: usize) {
        self.key.store(key, Ordering::Relaxed);
    }

    /// Ends a task whose future never reached its reactor.
    pub(crate) fn finish_unstarted(&self, result: TaskResult<T>) {
        self.cell.complete(result);
    }
}

impl<T: 'static> Header<T> {
    /// Puts a woken task on its owner's run queue: the local queue when woken on the owner's
    /// thread, else the owner's remote queue.
    pub(crate) fn enqueue(self: Arc<Self>) {
        let mut task = Some(self);
        let _ = LOCAL.try_with(|local| {
            if let Some(queue) = local.borrow().as_ref() {
                let id = queue.owner_id();
                if let Some(t) = task.take_if(|t| scheduler_id(&t.owner) == id) {
                    queue.push(t);
                }
            }
        });
        if let Some(task) = task {
            // Cloned: once pushed, the task (and with it the header's reference to its owner)
            // may be dropped by the owner's thread while the push still signals it.
            let owner = task.owner.clone();
            owner.schedule_remote(task);
        }
    }
}

impl<T: 'static> TaskRef for Header<T> {
    fn state(&self) -> &State {
        &self.cell.state
    }

    fn key(&self) -> usize {
        self.key.load(Ordering::Relaxed)
    }

    fn owner(&self) -> &Arc<dyn Schedule> {
        &self.owner
    }
}

impl<T: 'static> ArcWake for Header<T> {
    fn wake(self: Arc<Self>) {
        if self.cell.state.transition_to_scheduled() {
            self.enqueue();
        }
    }

    fn wake_by_ref(arc_self: &Arc<Self>) {
        if arc_self.cell.state.transition_to_scheduled() {
            arc_self.clone().enqueue();
        }
    }
}

impl<T> fmt::Debug for Header<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Header")
            .field("state", &self.cell.state.load())
            .field("owner", &scheduler_id(&self.owner))
            .finish()
    }
}
