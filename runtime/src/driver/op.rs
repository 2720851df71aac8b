//! In-flight operations: futures that own everything the kernel may touch until their CQE.
//!
//! Each op has a slot in the driver's slab whose key is the SQE's `user_data`. The slot's
//! [`Lifecycle`] says who owns the op's data:
//! - `Submitted` / `Waiting`: the future owns it and the kernel may still use it;
//! - `Ignored`: the future was dropped early; the slot owns the data until the CQE, then drops
//!   it. An `ASYNC_CANCEL` was queued so that CQE comes soon;
//! - `Completed`: the CQE arrived; the future takes the result and frees the slot.
//!
//! Slots are freed only after the final CQE, so a `user_data` never names two ops at once.

use std::any::Any;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use io_uring::squeue::Entry;

use super::Driver;

/// A CQE's result and flags.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Completion {
    pub(crate) result: i32,
    pub(crate) flags: u32,
}

impl Completion {
    /// The result as `io::Result`: negative values are `-errno`.
    pub(crate) fn into_io(self) -> std::io::Result<u32> {
        if self.result < 0 {
            Err(std::io::Error::from_raw_os_error(-self.result))
        } else {
            Ok(self.result as u32)
        }
    }
}

pub(crate) enum Lifecycle {
    Submitted,
    Waiting(Waker),
    Ignored(#[allow(dead_code)] Box<dyn Any>),
    Completed(Completion),
    Multi(MultiState),
}

/// A multishot op (accept): completions queue up until taken.
pub(crate) struct MultiState {
    pub(crate) ready: VecDeque<Completion>,
    pub(crate) waker: Option<Waker>,
    /// The kernel sent its last CQE for this submission (no `IORING_CQE_F_MORE`).
    pub(crate) finished: bool,
    /// The owner is gone: results are discarded (with `discard`) as they come.
    pub(crate) ignored: bool,
    pub(crate) discard: fn(Completion),
}

/// What an op does with its CQE.
pub(crate) trait OpKind: 'static {
    type Output;
    fn complete(self, completion: Completion) -> Self::Output;
}

/// A single-shot op in flight; resolves to `T::Output`.
pub(crate) struct Op<T: OpKind> {
    driver: Rc<Driver>,
    key: usize,
    data: Option<T>,
}

impl<T: OpKind> Op<T> {
    /// Queues `entry` (tagged with a fresh slot) and returns the op owning `data`.
    ///
    /// # Safety
    ///
    /// Every pointer in `entry` must point into memory owned by `data` that stays valid and
    /// unmoved while `data` lives, even when `data` itself is moved (heap memory, not inline
    /// fields).
    pub(crate) unsafe fn submit(data: T, entry: Entry) -> Op<T> {
        let driver = Driver::current();
        let key = driver.ops.borrow_mut().insert(Lifecycle::Submitted);
        driver.push(entry.user_data(key as u64));
        Op {
            driver,
            key,
            data: Some(data),
        }
    }
}

// The op's data is never pinned: the kernel points at its heap memory, not at the op.
impl<T: OpKind> Unpin for Op<T> {}

impl<T: OpKind> Future for Op<T> {
    type Output = T::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T::Output> {
        let this = self.get_mut();
        let mut ops = this.driver.ops.borrow_mut();
        let Some(slot) = ops.get_mut(this.key) else {
            unreachable!("an op's slot lives until the op takes its completion")
        };
        match slot {
            Lifecycle::Completed(completion) => {
                let completion = *completion;
                ops.remove(this.key);
                drop(ops);
                let data = this.data.take().expect("op polled after completion");
                Poll::Ready(data.complete(completion))
            }
            Lifecycle::Waiting(waker) if waker.will_wake(cx.waker()) => Poll::Pending,
            _ => {
                *slot = Lifecycle::Waiting(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

impl<T: OpKind> Drop for Op<T> {
    fn drop(&mut self) {
        let Some(data) = self.data.take() else { return };
        let mut ops = self.driver.ops.borrow_mut();
        match ops.get_mut(self.key) {
            Some(Lifecycle::Completed(_)) => {
                ops.remove(self.key);
                drop(ops);
                drop(data);
            }
            Some(slot) => {
                // The kernel may still write into `data`: park it in the slot until the CQE.
                *slot = Lifecycle::Ignored(Box::new(data));
                drop(ops);
                self.driver.cancel(self.key);
            }
            None => unreachable!("an op's slot lives until the op takes its completion"),
        }
    }
}

/// A multishot op: a stream of completions from one submission.
pub(crate) struct MultiOp {
    driver: Rc<Driver>,
    key: usize,
}

impl MultiOp {
    /// Queues `entry` as a multishot op. `discard` disposes of completions nobody will take
    /// (e.g. closes accepted sockets after the listener is gone).
    ///
    /// # Safety
    ///
    /// `entry` must not point into memory (multishot accept passes no buffers).
    pub(crate) unsafe fn submit(entry: Entry, discard: fn(Completion)) -> MultiOp {
        let driver = Driver::current();
        let key = driver.ops.borrow_mut().insert(Lifecycle::Multi(MultiState {
            ready: VecDeque::new(),
            waker: None,
            finished: false,
            ignored: false,
            discard,
        }));
        driver.push(entry.user_data(key as u64));
        MultiOp { driver, key }
    }

    /// Asks the kernel to end this multishot. Completions already on their way still arrive
    /// (through [`MultiOp::poll_next`]) before the final one.
    pub(crate) fn cancel(&self) {
        self.driver.cancel(self.key);
    }

    /// The next completion. `Ready(None)` once the kernel ended the multishot (re-submit).
    pub(crate) fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Completion>> {
        let mut ops = self.driver.ops.borrow_mut();
        let Some(Lifecycle::Multi(state)) = ops.get_mut(self.key) else {
            unreachable!("a multishot op's slot lives until the op is dropped")
        };
        if let Some(completion) = state.ready.pop_front() {
            return Poll::Ready(Some(completion));
        }
        if state.finished {
            return Poll::Ready(None);
        }
        match &state.waker {
            Some(waker) if waker.will_wake(cx.waker()) => {}
            _ => state.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

impl Drop for MultiOp {
    fn drop(&mut self) {
        let mut ops = self.driver.ops.borrow_mut();
        let Some(Lifecycle::Multi(state)) = ops.get_mut(self.key) else {
            return;
        };
        let discard = state.discard;
        let pending: Vec<Completion> = state.ready.drain(..).collect();
        let finished = state.finished;
        state.ignored = true;
        if finished {
            ops.remove(self.key);
        }
        drop(ops);
        pending.into_iter().for_each(discard);
        if !finished {
            self.driver.cancel(self.key);
        }
    }
}
