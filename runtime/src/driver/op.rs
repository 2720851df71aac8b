//! The op lifecycle, for both drivers, in one place.
//!
//! An op type (see `crate::ops`) says two things about itself: the io_uring SQE that performs
//! it, and the non-blocking syscall that performs it in readiness mode with the direction it
//! waits for when that syscall would block. [`Op`] and [`MultiOp`] run it on whichever driver
//! the reactor has.
//!
//! **io_uring.** Each op has a slot in the driver's slab whose key is the SQE's `user_data`.
//! The slot's [`Lifecycle`] says who owns the op's data:
//! - `Submitted` / `Waiting(waker)`: the future owns it and the kernel may still use it;
//! - `Ignored(data, discard)`: the future was dropped early; the slot owns the data until the
//!   CQE, then drops it and disposes of the result (an accepted socket is closed). An
//!   `ASYNC_CANCEL` was queued so that CQE comes soon;
//! - `Completed(result)`: the CQE arrived; the future takes the result and frees the slot.
//!
//! Slots are freed only after the final CQE, so a `user_data` never names two ops at once.
//!
//! **Readiness (epoll).** Nothing is in flight between polls: a poll makes the syscall; on
//! `EAGAIN` it leaves its waker with the fd's registration and returns `Pending`, and the
//! next readiness edge wakes it to try again (compio's way: try first, register interest only
//! when needed). A poll between that `EAGAIN` and the next edge makes no syscall at all (the
//! registration remembers that the fd is not ready). Dropping the op drops its data at
//! once; a stale waker left behind is woken once, harmlessly.

use std::any::Any;
use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use io_uring::squeue::Entry;

use super::fd::SharedFd;
use super::{Backend, Epoll, IoDriver};
use crate::net::RecvConsumer;

/// A completion: a CQE's result and flags, or a readiness-mode syscall's outcome in the same
/// shape (negative results are `-errno`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Completion {
    pub(crate) result: i32,
    pub(crate) flags: u32,
}

/// `IORING_CQE_F_BUFFER`: the upper 16 bits of the flags name a provided buffer.
pub(crate) const F_BUFFER: u32 = 1;
/// `IORING_CQE_F_MORE`: a multishot op stays armed after this completion.
pub(crate) const F_MORE: u32 = 2;

impl Completion {
    /// The result as `io::Result`.
    pub(crate) fn into_io(self) -> io::Result<u32> {
        if self.result < 0 {
            Err(io::Error::from_raw_os_error(-self.result))
        } else {
            Ok(self.result as u32)
        }
    }

    /// A readiness-mode syscall's outcome as a completion.
    pub(crate) fn from_io(result: io::Result<u32>) -> Completion {
        let result = match result {
            Ok(n) => n.min(i32::MAX as u32) as i32,
            Err(err) => -err.raw_os_error().unwrap_or(libc::EIO),
        };
        Completion { result, flags: 0 }
    }

    /// The provided buffer this completion filled, if any.
    pub(crate) fn buffer_id(self) -> Option<u16> {
        (self.flags & F_BUFFER != 0).then_some((self.flags >> 16) as u16)
    }
}

/// Which readiness an op waits for when its syscall would block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Interest {
    Read,
    Write,
}

/// A single-shot operation, defined once for both drivers.
///
/// # Safety
///
/// Every pointer in the entry [`OpAble::uring_entry`] returns must point into memory owned by
/// `self` that stays valid and unmoved while `self` lives, even when `self` is moved (heap
/// memory, not inline fields): the kernel may use it until the op's CQE.
pub(crate) unsafe trait OpAble: 'static {
    type Output;

    /// The SQE that performs the op (its `user_data` is set by the driver).
    fn uring_entry(&mut self) -> Entry;

    /// The fd and direction to wait on when [`OpAble::call`] would block; `None` for ops
    /// that never block.
    fn readiness(&self) -> Option<(&SharedFd, Interest)>;

    /// The non-blocking syscall; `Err(WouldBlock)` means "wait for readiness and call again".
    fn call(&mut self) -> io::Result<u32>;

    /// Turns the completion into the op's output (buffers go back to the caller here).
    fn complete(self, completion: Completion) -> Self::Output;

    /// Disposes of a result nobody will take (the op was dropped before its output was):
    /// closes an accepted socket. Most results own nothing.
    fn discard(_completion: Completion) {}
}

/// A multishot operation: one submission, a stream of completions.
///
/// # Safety
///
/// As for [`OpAble`]; multishot entries in ringhop point to no memory of the op at all
/// (accept passes no address, receive takes buffers from the registered ring).
pub(crate) unsafe trait MultiAble: 'static {
    /// The multishot SQE.
    fn uring_entry(&self) -> Entry;

    /// The fd and direction each readiness-mode call waits on.
    fn readiness(&self) -> (&SharedFd, Interest);

    /// One readiness-mode call: the completion the kernel would have posted, or
    /// `Err(WouldBlock)`.
    fn call(&mut self, epoll: &Epoll) -> io::Result<Completion>;

    /// Disposes of a completion nobody will take (the owner is gone): closes an accepted
    /// socket, recycles a buffer.
    fn discard(completion: Completion);
}

pub(crate) enum Lifecycle {
    Submitted,
    Waiting(Waker),
    /// Like `Waiting`, but the CQE calls the hook inline instead of waking a task.
    Hooked(Rc<dyn CompletionHook>),
    /// The op's data, and what disposes of the result the CQE brings.
    Ignored(#[allow(dead_code)] Box<dyn Any>, fn(Completion)),
    Completed(Completion),
    Multi(MultiState),
}

/// A multishot op's slot (io_uring): completions queue up until taken.
pub(crate) struct MultiState {
    pub(crate) ready: VecDeque<Completion>,
    pub(crate) waker: Option<Waker>,
    /// The kernel sent its last CQE for this submission (no `IORING_CQE_F_MORE`).
    pub(crate) finished: bool,
    /// The owner is gone: results are discarded (with `discard`) as they come.
    pub(crate) ignored: bool,
    pub(crate) discard: fn(Completion),
    /// A receive's consumer, offered each chunk as it is reaped instead of queueing it and
    /// waking the poller: bytes that go straight where they belong cost no task poll.
    pub(crate) consumer: Option<Rc<dyn RecvConsumer>>,
}

/// Called inline, as an op's completion is reaped, instead of waking the task that polled
/// it (see [`Writev::on_completion`](crate::net::Writev::on_completion)): whoever owns the op
/// polls it from here (it is ready) and goes on, without a task poll.
pub trait CompletionHook {
    /// The op completed; poll it.
    fn completed(self: Rc<Self>);
}

/// Slot key of an op that runs in readiness mode (it has no slot).
const READINESS: usize = usize::MAX;

/// A single-shot op; resolves to `T::Output`.
pub(crate) struct Op<T: OpAble> {
    driver: Rc<IoDriver>,
    key: usize,
    data: Option<T>,
}

impl<T: OpAble> Op<T> {
    /// Starts `data` on the current reactor's driver: queues its SQE (io_uring), or defers the
    /// syscall to the first poll (readiness).
    pub(crate) fn new(mut data: T) -> Op<T> {
        let driver = IoDriver::current();
        let key = match &driver.backend {
            Backend::Uring(uring) => {
                let entry = data.uring_entry();
                // The slab owns nothing yet; the op keeps `data` (the SQE's target, see
                // OpAble's contract) until the CQE.
                let key = uring.ops.borrow_mut().insert(Lifecycle::Submitted);
                uring.push(entry.user_data(key as u64));
                key
            }
            Backend::Epoll(_) => READINESS,
        };
        Op {
            driver,
            key,
            data: Some(data),
        }
    }
}

impl<T: OpAble> Op<T> {
    /// Until it is polled again, the op's completion calls `hook` (inline, as it is reaped)
    /// instead of waking the last poller. Readiness mode has no completion: nothing changes.
    pub(crate) fn set_hook(&self, hook: Rc<dyn CompletionHook>) {
        let Backend::Uring(uring) = &self.driver.backend else {
            return;
        };
        if let Some(slot @ (Lifecycle::Submitted | Lifecycle::Waiting(_) | Lifecycle::Hooked(_))) =
            uring.ops.borrow_mut().get_mut(self.key)
        {
            *slot = Lifecycle::Hooked(hook);
        }
    }
}

// The op's data is never pinned: the kernel points at its heap memory, not at the op.
impl<T: OpAble> Unpin for Op<T> {}

impl<T: OpAble> Future for Op<T> {
    type Output = T::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T::Output> {
        let this = self.get_mut();
        let uring = match &this.driver.backend {
            Backend::Uring(uring) => uring,
            Backend::Epoll(epoll) => {
                let data = this.data.as_mut().expect("op polled after completion");
                let result =
                    std::task::ready!(call_when_ready(epoll, data, cx, T::readiness, T::call));
                let data = this.data.take().expect("checked above");
                return Poll::Ready(data.complete(Completion::from_io(result)));
            }
        };
        let mut ops = uring.ops.borrow_mut();
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

impl<T: OpAble> Drop for Op<T> {
    fn drop(&mut self) {
        let Some(data) = self.data.take() else { return };
        let Backend::Uring(uring) = &self.driver.backend else {
            return;
        };
        let mut ops = uring.ops.borrow_mut();
        match ops.get_mut(self.key) {
            Some(Lifecycle::Completed(completion)) => {
                let completion = *completion;
                ops.remove(self.key);
                drop(ops);
                drop(data);
                T::discard(completion);
            }
            Some(slot) => {
                // The kernel may still write into `data`: park it in the slot until the CQE.
                *slot = Lifecycle::Ignored(Box::new(data), T::discard);
                drop(ops);
                uring.cancel(self.key);
            }
            None => unreachable!("an op's slot lives until the op takes its completion"),
        }
    }
}

/// A multishot op: a stream of completions from one submission (io_uring), or a loop of
/// readiness-mode calls feeding the same stream.
pub(crate) struct MultiOp<T: MultiAble> {
    driver: Rc<IoDriver>,
    key: usize,
    op: T,
    /// Readiness mode: asked to stop; the stream ends at the next poll.
    stopped: bool,
}

impl<T: MultiAble> MultiOp<T> {
    /// Starts `op` on the current reactor's driver.
    pub(crate) fn new(op: T) -> MultiOp<T> {
        let driver = IoDriver::current();
        let key = match &driver.backend {
            Backend::Uring(uring) => {
                let key = uring.ops.borrow_mut().insert(Lifecycle::Multi(MultiState {
                    ready: VecDeque::new(),
                    waker: None,
                    finished: false,
                    ignored: false,
                    discard: T::discard,
                    consumer: None,
                }));
                uring.push(op.uring_entry().user_data(key as u64));
                key
            }
            Backend::Epoll(_) => READINESS,
        };
        MultiOp {
            driver,
            key,
            op,
            stopped: false,
        }
    }

    /// Offers this op's completions to `consumer` as they are reaped (io_uring; in readiness
    /// mode the stream attaches its consumer to the fd's registration while it waits, see
    /// `RecvStream::poll_recv`).
    pub(crate) fn set_consumer(&self, consumer: Option<Rc<dyn RecvConsumer>>) {
        let Backend::Uring(uring) = &self.driver.backend else {
            return;
        };
        if let Some(Lifecycle::Multi(state)) = uring.ops.borrow_mut().get_mut(self.key) {
            state.consumer = consumer;
        }
    }

    /// Asks for the stream to end. Completions already on their way still arrive (through
    /// [`MultiOp::poll_next`]) before the end.
    pub(crate) fn cancel(&mut self) {
        match &self.driver.backend {
            Backend::Uring(uring) => uring.cancel(self.key),
            Backend::Epoll(epoll) => {
                self.stopped = true;
                epoll.detach_consumer(self.op.readiness().0);
            }
        }
    }

    /// The next completion. `Ready(None)` once the stream ended (start a new op to go on).
    pub(crate) fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Completion>> {
        let uring = match &self.driver.backend {
            Backend::Uring(uring) => uring,
            Backend::Epoll(_) if self.stopped => return Poll::Ready(None),
            Backend::Epoll(epoll) => {
                // What the driver received for the consumer and it did not take comes first.
                if let Some(held) = epoll.take_held(self.op.readiness().0) {
                    return Poll::Ready(Some(held));
                }
                let result = std::task::ready!(call_when_ready(
                    epoll,
                    &mut self.op,
                    cx,
                    |op| Some(op.readiness()),
                    |op| op.call(epoll)
                ));
                return Poll::Ready(Some(
                    result.unwrap_or_else(|err| Completion::from_io(Err(err))),
                ));
            }
        };
        let mut ops = uring.ops.borrow_mut();
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

impl<T: MultiAble> Drop for MultiOp<T> {
    fn drop(&mut self) {
        let uring = match &self.driver.backend {
            Backend::Uring(uring) => uring,
            Backend::Epoll(epoll) => {
                // Nobody polls this stream any more: nothing is received for its consumer.
                epoll.detach_consumer(self.op.readiness().0);
                return;
            }
        };
        let mut ops = uring.ops.borrow_mut();
        let Some(Lifecycle::Multi(state)) = ops.get_mut(self.key) else {
            return;
        };
        let pending: Vec<Completion> = state.ready.drain(..).collect();
        let finished = state.finished;
        state.ignored = true;
        // Whatever the consumer holds goes now, not when the kernel's last CQE comes.
        let consumer = state.consumer.take();
        if finished {
            ops.remove(self.key);
        }
        drop(ops);
        drop(consumer);
        pending.into_iter().for_each(T::discard);
        if !finished {
            uring.cancel(self.key);
        }
    }
}

/// Readiness mode, for single-shot and multishot ops alike: makes the op's syscall until it
/// no longer meets `EINTR`; on `EAGAIN` — or at once, without a syscall, when the fd is known
/// not ready since its last `EAGAIN` — leaves the waker with the fd's registration and
/// returns `Pending`.
fn call_when_ready<S, R>(
    epoll: &Epoll,
    op: &mut S,
    cx: &mut Context<'_>,
    readiness: fn(&S) -> Option<(&SharedFd, Interest)>,
    mut call: impl FnMut(&mut S) -> io::Result<R>,
) -> Poll<io::Result<R>> {
    let wait = |fd: &SharedFd, interest| match epoll.await_readiness(fd, interest, cx.waker()) {
        Ok(()) => Poll::Pending,
        Err(err) => Poll::Ready(Err(err)),
    };
    if let Some((fd, interest)) = readiness(op) {
        if !epoll.may_be_ready(fd, interest) {
            return wait(fd, interest);
        }
    }
    loop {
        epoll.count_call();
        match call(op) {
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                return match readiness(op) {
                    Some((fd, interest)) => wait(fd, interest),
                    None => Poll::Ready(Err(err)),
                };
            }
            result => return Poll::Ready(result),
        }
    }
}
