//! The reactor's local executor: a slab of task futures and a FIFO run queue, both touched
//! only by the reactor thread (no lock on the local run queue).
//!
//! A task woken inside [`hand_off`](super::hand_off) by the task being polled goes to a
//! one-task "next" slot instead of the back of the queue (like tokio's LIFO slot, but opt-in
//! per wake): a request hops from the recv pump to the connection to the send pump back to
//! back, while its bytes are still in cache, instead of waiting three times behind every
//! other ready connection. A streak of such hand-offs is capped, and a task that wakes
//! itself (a yield) goes to the back, so nothing starves.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_task::waker_ref;

use crate::slab::Slab;
use crate::stats::Counters;
use crate::task::{scheduler_id, Header, JoinError, LocalQueue, TaskRef};

/// A task's future as the executor sees it.
trait Runnable {
    /// Polls the future; `Ready` once its result is in the join cell.
    fn poll_task(self: Pin<&mut Self>) -> Poll<()>;
    /// Drops the future, then records the cancellation.
    fn cancel(self: Pin<Box<Self>>);
}

struct Task<F: Future> {
    header: Arc<Header<F::Output>>,
    future: F,
}

impl<F: Future + 'static> Runnable for Task<F>
where
    F::Output: 'static,
{
    fn poll_task(self: Pin<&mut Self>) -> Poll<()> {
        // SAFETY: `future` is structurally pinned: it is never moved out of the pinned task,
        // and `header` is never pinned.
        let this = unsafe { self.get_unchecked_mut() };
        // SAFETY: see above; `this.future` stays where the pinned box put it.
        let future = unsafe { Pin::new_unchecked(&mut this.future) };
        let waker = waker_ref(&this.header);
        let mut cx = Context::from_waker(&waker);
        match catch_unwind(AssertUnwindSafe(|| future.poll(&mut cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(output)) => {
                this.header.cell.complete(Ok(output));
                Poll::Ready(())
            }
            Err(payload) => {
                this.header.cell.complete(Err(JoinError::Panicked(payload)));
                Poll::Ready(())
            }
        }
    }

    fn cancel(self: Pin<Box<Self>>) {
        let header = self.header.clone();
        // A future that panics while dropped is still cancelled; the payload has nobody to go to.
        let _ = catch_unwind(AssertUnwindSafe(move || drop(self)));
        header.cell.complete(Err(JoinError::Cancelled));
    }
}

/// A slab slot: the future, or `None` while it is out being polled.
type Slot = Option<Pin<Box<dyn Runnable>>>;

/// Consecutive polls from the next slot before the queue gets a turn.
const MAX_NEXT_STREAK: u32 = 4;

pub(crate) struct Executor {
    run_queue: RefCell<VecDeque<Arc<dyn TaskRef>>>,
    /// The task woken last by the task being polled; polled next.
    next: RefCell<Option<Arc<dyn TaskRef>>>,
    /// The task being polled (its header's address), null between polls.
    polling: Cell<*const ()>,
    /// Set while a [`hand_off`](super::hand_off) closure runs.
    hand_off: Cell<bool>,
    tasks: RefCell<Slab<Slot>>,
    /// The identity of the reactor's `Shared` (see `task::scheduler_id`).
    owner_id: *const (),
}

impl Executor {
    pub(crate) fn new(owner_id: *const ()) -> Self {
        Executor {
            owner_id,
            run_queue: RefCell::new(VecDeque::with_capacity(256)),
            next: RefCell::new(None),
            polling: Cell::new(std::ptr::null()),
            hand_off: Cell::new(false),
            tasks: RefCell::new(Slab::new()),
        }
    }

    /// Stores a spawned future under its (already created) header and queues its first poll.
    pub(crate) fn insert<F>(&self, header: Arc<Header<F::Output>>, future: F, counters: &Counters)
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        let task: Pin<Box<dyn Runnable>> = Box::pin(Task {
            header: header.clone(),
            future,
        });
        let key = self.tasks.borrow_mut().insert(Some(task));
        Counters::bump_local(&counters.tasks_spawned);
        header.set_key(key);
        self.run_queue.borrow_mut().push_back(header);
    }

    /// Queues a task at the back (remote wakes, completions, spawns).
    pub(crate) fn push_local(&self, task: Arc<dyn TaskRef>) {
        self.run_queue.borrow_mut().push_back(task);
    }

    /// Sets the hand-off flag; returns its previous value.
    pub(crate) fn set_hand_off(&self, on: bool) -> bool {
        self.hand_off.replace(on)
    }

    /// Queues a task woken on this reactor: into the next slot when another task handed it
    /// off during its poll, else at the back.
    pub(crate) fn wake_local(&self, task: Arc<dyn TaskRef>) {
        let polling = self.polling.get();
        if !self.hand_off.get()
            || polling.is_null()
            || std::ptr::eq(Arc::as_ptr(&task).cast::<()>(), polling)
        {
            self.push_local(task);
            return;
        }
        if let Some(bumped) = self.next.borrow_mut().replace(task) {
            self.push_local(bumped);
        }
    }

    pub(crate) fn has_runnable(&self) -> bool {
        !self.run_queue.borrow().is_empty()
    }

    pub(crate) fn live_tasks(&self) -> usize {
        self.tasks.borrow().len()
    }

    /// Polls up to `budget` queued tasks; returns how many were polled.
    pub(crate) fn run(&self, budget: usize, counters: &Counters) -> usize {
        let mut polled = 0;
        let mut streak = 0;
        while polled < budget {
            let next = self.next.borrow_mut().take();
            let task = match next {
                Some(task) if streak < MAX_NEXT_STREAK => {
                    streak += 1;
                    task
                }
                next => {
                    streak = 0;
                    let mut queue = self.run_queue.borrow_mut();
                    if let Some(next) = next {
                        queue.push_back(next);
                    }
                    let Some(task) = queue.pop_front() else {
                        break;
                    };
                    task
                }
            };
            self.polling.set(Arc::as_ptr(&task).cast::<()>());
            let ran = self.run_task(task, counters);
            self.polling.set(std::ptr::null());
            if ran {
                polled += 1;
            }
        }
        // Out of budget with a hand-off pending: it is first in line next time.
        if let Some(next) = self.next.borrow_mut().take() {
            self.run_queue.borrow_mut().push_front(next);
        }
        polled
    }

    fn run_task(&self, task: Arc<dyn TaskRef>, counters: &Counters) -> bool {
        let snapshot = task.state().transition_to_running();
        if snapshot.is_complete() {
            return false;
        }
        if scheduler_id(task.owner()) != self.owner_id {
            // A task of another reactor reached this run queue: a routing bug. Count it,
            // never poll it here, and hand the wake to its owner so it is not lost.
            Counters::bump_local(&counters.off_reactor_polls);
            let owner = task.owner().clone();
            owner.schedule_remote(task);
            return false;
        }
        let key = task.key();
        let Some(mut future) = self.tasks.borrow_mut().get_mut(key).and_then(Option::take) else {
            return false;
        };
        Counters::bump_local(&counters.polls);
        if snapshot.is_aborted() {
            self.tasks.borrow_mut().remove(key);
            future.cancel();
            Counters::bump_local(&counters.tasks_finished);
            return true;
        }
        // The slab is not borrowed while the task runs: it may spawn or wake other tasks.
        let done = crate::coop::with_budget(|| future.as_mut().poll_task()).is_ready();
        if done {
            self.tasks.borrow_mut().remove(key);
            Counters::bump_local(&counters.tasks_finished);
            let _ = catch_unwind(AssertUnwindSafe(move || drop(future)));
        } else if let Some(slot) = self.tasks.borrow_mut().get_mut(key) {
            *slot = Some(future);
        }
        true
    }

    /// Cancels every task (reactor shutdown): futures are dropped, join handles see
    /// `Cancelled`.
    pub(crate) fn cancel_all(&self, counters: &Counters) {
        loop {
            let tasks: Vec<Slot> = self.tasks.borrow_mut().drain().collect();
            if tasks.is_empty() {
                break;
            }
            // Dropping a future may spawn more tasks; the loop catches those too.
            for task in tasks.into_iter().flatten() {
                task.cancel();
                Counters::bump_local(&counters.tasks_finished);
            }
        }
        self.next.borrow_mut().take();
        self.run_queue.borrow_mut().clear();
    }
}

impl LocalQueue for Executor {
    fn owner_id(&self) -> *const () {
        self.owner_id
    }

    fn push(&self, task: Arc<dyn TaskRef>) {
        self.wake_local(task);
    }
}
