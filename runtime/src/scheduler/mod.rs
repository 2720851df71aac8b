//! Scheduling: the local executor and its run queues, the remote queue other threads push
//! to, the park word that decides when they must wake the reactor, the reactor's shared
//! state, the blocking pool, and the loop turn that ties them to the driver.
//!
//! Dependencies point down: `turn` uses `remote`, which uses `park`; the executor and the
//! shared state reach tasks only through `task::{TaskRef, Schedule, LocalQueue}`.

mod before_submit;
pub(crate) mod blocking;
pub(crate) mod blocking_pool;
pub(crate) mod executor;
pub(crate) mod park;
pub(crate) mod remote;
pub(crate) mod shared;
mod spawn;
pub(crate) mod turn;

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;

use crate::current::{self, Current};
pub(crate) use before_submit::BeforeSubmitQueue;
pub use before_submit::{before_submit, BeforeSubmit};
pub(crate) use executor::Executor;
pub(crate) use shared::{Remote, Shared};
pub use spawn::{hand_off, spawn_local};

/// The scheduler of the reactor running on this thread.
pub(crate) struct Local {
    pub(crate) shared: Arc<Shared>,
    pub(crate) executor: Rc<Executor>,
    /// Run right before each submit.
    pub(crate) before_submit: BeforeSubmitQueue,
    stopping: Cell<bool>,
}

impl Local {
    pub(crate) fn new(shared: Arc<Shared>) -> Local {
        let executor = Rc::new(Executor::new(crate::task::scheduler_id(
            &(shared.clone() as Arc<dyn crate::task::Schedule>),
        )));
        Local {
            shared,
            executor,
            before_submit: BeforeSubmitQueue::default(),
            stopping: Cell::new(false),
        }
    }

    /// Makes the reactor's loop end after the current turn.
    pub(crate) fn stop(&self) {
        self.stopping.set(true);
    }

    pub(crate) fn is_stopping(&self) -> bool {
        self.stopping.get()
    }
}

thread_local! {
    static CURRENT: Current<Local> = const { Current::new() };
}

/// Makes `local` this thread's scheduler (reactor start), or clears it (`None`, exit); wakes
/// on this thread go to its executor meanwhile.
pub(crate) fn set_current(local: Option<Rc<Local>>) {
    let queue = local
        .as_ref()
        .map(|local| local.executor.clone() as Rc<dyn crate::task::LocalQueue>);
    crate::task::set_local_queue(queue);
    current::set(&CURRENT, local);
}

/// Runs `f` with this thread's scheduler, or returns `None` off any reactor thread.
#[inline]
pub(crate) fn with_current<R>(f: impl FnOnce(&Local) -> R) -> Option<R> {
    current::with(&CURRENT, f)
}

/// This thread's scheduler; panics with a message naming `what` off a reactor thread.
pub(crate) fn current(what: &str) -> Rc<Local> {
    current::get(&CURRENT, what)
}
