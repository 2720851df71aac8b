//! Work a reactor runs once per loop turn, right before it submits I/O.
//!
//! It is how a protocol layer batches: a connection that produced output several times
//! during a turn asks once to be called before the submit, and turns all of it into one
//! operation then (the pipes crate sends a connection's flushed responses this way) —
//! without a task, so without a task poll.

use std::cell::RefCell;
use std::rc::Rc;

/// Called by the reactor once, right before its next submit (see [`before_submit`]).
pub trait BeforeSubmit {
    /// Runs on the reactor thread, after the turn's task polls and before the turn's
    /// submit; whatever I/O it queues goes out with that submit.
    fn before_submit(self: Rc<Self>);
}

/// Items waiting for the next submit of one reactor.
#[derive(Default)]
pub(crate) struct BeforeSubmitQueue {
    items: RefCell<Vec<Rc<dyn BeforeSubmit>>>,
    /// The list being run, kept to reuse its capacity.
    spare: RefCell<Vec<Rc<dyn BeforeSubmit>>>,
}

/// Rounds of items queued by items, per turn: an item that keeps queueing itself cannot
/// hold the reactor. What is left runs next turn, which then does not wait for I/O.
const MAX_ROUNDS: usize = 4;

impl BeforeSubmitQueue {
    fn push(&self, item: Rc<dyn BeforeSubmit>) {
        self.items.borrow_mut().push(item);
    }

    /// Runs what was queued (and what that queues, for a few rounds).
    pub(crate) fn run(&self) {
        for _ in 0..MAX_ROUNDS {
            let mut batch = std::mem::take(&mut *self.spare.borrow_mut());
            std::mem::swap(&mut batch, &mut *self.items.borrow_mut());
            if batch.is_empty() {
                *self.spare.borrow_mut() = batch;
                return;
            }
            for item in batch.drain(..) {
                item.before_submit();
            }
            *self.spare.borrow_mut() = batch;
        }
    }

    /// Items queued that the last [`run`](Self::run) left for the next turn (a chain of
    /// items queueing items longer than its rounds): the reactor must not park on them.
    pub(crate) fn has_pending(&self) -> bool {
        !self.items.borrow().is_empty()
    }

    /// Drops what never ran (reactor exit).
    pub(crate) fn clear(&self) {
        let items = std::mem::take(&mut *self.items.borrow_mut());
        drop(items);
    }
}

/// Queues `item` to run on the current reactor right before its next submit, after the
/// turn's task polls. Queue it once per turn (keep a "queued" flag): it runs once per push.
///
/// Returns `false` (and drops `item`) off a reactor thread.
///
/// ```
/// use std::cell::Cell;
/// use std::rc::Rc;
/// use ringhop_runtime::BeforeSubmit;
///
/// struct Batch(Cell<u32>);
/// impl BeforeSubmit for Batch {
///     fn before_submit(self: Rc<Self>) {
///         self.0.set(self.0.get() + 1);
///     }
/// }
///
/// let rt = ringhop_runtime::Runtime::builder().reactors(1).build().unwrap();
/// let runs = rt.block_on_local(|| async {
///     let batch = Rc::new(Batch(Cell::new(0)));
///     assert!(ringhop_runtime::before_submit(batch.clone()));
///     // Waiting ends the turn: the item runs before the reactor submits and sleeps.
///     ringhop_runtime::time::sleep(std::time::Duration::from_millis(1)).await;
///     batch.0.get()
/// });
/// assert_eq!(runs, 1);
/// ```
pub fn before_submit(item: Rc<dyn BeforeSubmit>) -> bool {
    super::with_current(|local| local.before_submit.push(item)).is_some()
}
