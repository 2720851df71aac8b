//! The io_uring backend: one ring per reactor, the slab of in-flight ops, the provided-buffer
//! ring, and the eventfd read that lets remote threads wake a parked reactor.

mod buf_ring;
pub(crate) mod probe;
pub(crate) mod setup;

use std::cell::{Cell, OnceCell, RefCell, UnsafeCell};
use std::io;
use std::os::fd::RawFd;
use std::sync::Arc;
use std::time::Duration;

use io_uring::{cqueue, opcode, squeue::Entry, types, IoUring};

pub(crate) use buf_ring::{BufRing, BUF_GROUP};
pub use setup::RingFlags;

use super::op::{Completion, Lifecycle};
use super::IoDriver;
use super::{RECV_BUFFERS, RECV_BUFFER_SIZE};
use crate::net::RecvConsumer;
use crate::slab::Slab;
use crate::stats::Counters;

/// `user_data` of the eventfd read.
const EVENTFD_TOKEN: u64 = u64::MAX;
/// `user_data` of fire-and-forget SQEs (cancels, closes) whose CQEs need no handling.
const IGNORE_TOKEN: u64 = u64::MAX - 1;
/// `IORING_ENTER_GETEVENTS` from the io_uring uapi.
const ENTER_GETEVENTS: u32 = 1;
/// CQEs taken from the ring per borrow.
const REAP_BATCH: usize = 64;

pub(crate) struct Uring {
    ring: RefCell<IoUring>,
    pub(crate) ops: RefCell<Slab<Lifecycle>>,
    flags: RingFlags,
    eventfd: RawFd,
    /// Target of the eventfd read; the kernel writes it while a read is in flight.
    eventfd_buf: Box<UnsafeCell<u64>>,
    eventfd_armed: Cell<bool>,
    counters: Arc<Counters>,
    /// Set up on first use; `Err` when the kernel has no provided-buffer rings.
    buf_ring: OnceCell<Result<BufRing, io::ErrorKind>>,
}

impl Uring {
    /// Sets up the ring on the calling (reactor) thread and arms the eventfd read.
    pub(crate) fn new(
        entries: u32,
        defer_taskrun: bool,
        eventfd: RawFd,
        counters: Arc<Counters>,
    ) -> io::Result<Uring> {
        let (ring, flags) = setup::build_ring(entries, defer_taskrun)?;
        let driver = Uring {
            ring: RefCell::new(ring),
            ops: RefCell::new(Slab::new()),
            flags,
            eventfd,
            eventfd_buf: Box::new(UnsafeCell::new(0)),
            eventfd_armed: Cell::new(false),
            counters,
            buf_ring: OnceCell::new(),
        };
        driver.arm_eventfd();
        Ok(driver)
    }

    pub(crate) fn flags(&self) -> RingFlags {
        self.flags
    }

    /// Queues an SQE; flushes the SQ to the kernel first if it is full.
    pub(crate) fn push(&self, entry: Entry) {
        Counters::bump_local(&self.counters.submissions);
        let mut ring = self.ring.borrow_mut();
        loop {
            // SAFETY: the callers (Op::submit, MultiOp::submit, and this module) guarantee
            // that whatever `entry` points to outlives the operation.
            if unsafe { ring.submission().push(&entry) }.is_ok() {
                return;
            }
            Counters::bump_local(&self.counters.enters);
            if let Err(err) = ring.submit() {
                if err.raw_os_error() != Some(libc::EBUSY) {
                    panic!("io_uring_enter failed while flushing a full submission queue: {err}");
                }
            }
        }
    }

    /// The reactor's provided-buffer ring, set up on first use (Linux 5.19+).
    pub(crate) fn buf_ring(&self) -> io::Result<&BufRing> {
        self.buf_ring
            .get_or_init(|| {
                let ring = self.ring.borrow();
                BufRing::new(&ring.submitter(), RECV_BUFFERS, RECV_BUFFER_SIZE)
                    .map_err(|err| err.kind())
            })
            .as_ref()
            .map_err(|kind| {
                io::Error::new(*kind, "this kernel cannot register provided-buffer rings")
            })
    }

    /// The provided-buffer ring if it was set up.
    pub(crate) fn buf_ring_if_set(&self) -> Option<&BufRing> {
        self.buf_ring.get().and_then(|ring| ring.as_ref().ok())
    }

    /// Asks the kernel to cancel the op in slot `key` (its CQE then arrives soon).
    pub(crate) fn cancel(&self, key: usize) {
        self.push(
            opcode::AsyncCancel::new(key as u64)
                .build()
                .user_data(IGNORE_TOKEN),
        );
    }

    /// Closes `fd` through the ring: no syscall of its own, batched with the next submit.
    pub(crate) fn close_fd(&self, fd: RawFd) {
        self.push(
            opcode::Close::new(types::Fd(fd))
                .build()
                .user_data(IGNORE_TOKEN),
        );
    }

    fn arm_eventfd(&self) {
        // The kernel writes the 8-byte counter into the boxed buffer, which lives until the
        // driver is gone (or is leaked with it, see Drop).
        let entry = opcode::Read::new(types::Fd(self.eventfd), self.eventfd_buf.get().cast(), 8)
            .build()
            .user_data(EVENTFD_TOKEN);
        self.push(entry);
        self.eventfd_armed.set(true);
    }

    /// Submits every queued SQE in one `io_uring_enter`, and, when `wait` is set, blocks until
    /// at least one CQE is ready or the timeout (if any) passes. Without `wait` the syscall is
    /// skipped when there is nothing to submit and no completion is held back by the kernel.
    pub(crate) fn submit(&self, wait: Option<Option<Duration>>) -> io::Result<()> {
        let mut ring = self.ring.borrow_mut();
        let (pending, held_back) = sq_state(&mut ring);
        let result = match wait {
            None => {
                if pending == 0 && !held_back {
                    return Ok(());
                }
                // Deferred task work only runs (and its CQEs only appear) on an enter with
                // GETEVENTS; without it, a busy reactor would starve its own completions.
                // SAFETY: no extended argument is passed.
                unsafe {
                    ring.submitter().enter::<libc::sigset_t>(
                        pending as u32,
                        0,
                        ENTER_GETEVENTS,
                        None,
                    )
                }
            }
            Some(None) => ring.submit_and_wait(1),
            Some(Some(timeout)) => {
                let ts = types::Timespec::from(timeout);
                let args = types::SubmitArgs::new().timespec(&ts);
                ring.submitter().submit_with_args(1, &args)
            }
        };
        Counters::bump_local(&self.counters.enters);
        match result {
            Ok(_) => Ok(()),
            Err(err)
                if matches!(
                    err.raw_os_error(),
                    Some(libc::ETIME) | Some(libc::EINTR) | Some(libc::EBUSY) | Some(libc::EAGAIN)
                ) =>
            {
                Ok(())
            }
            Err(err) => Err(err),
        }
    }

    /// Whether a CQE is waiting or the kernel holds completions back for us (deferred task
    /// work, CQ overflow): what a spinning reactor watches, without a syscall.
    pub(crate) fn has_ready_work(&self) -> bool {
        let mut ring = self.ring.borrow_mut();
        if sq_state(&mut ring).1 {
            return true;
        }
        let mut cq = ring.completion();
        cq.sync();
        !cq.is_empty()
    }

    /// Takes every available CQE and hands each to its op. Returns the number reaped.
    pub(crate) fn reap(&self, driver: &IoDriver) -> usize {
        let mut total = 0;
        loop {
            let mut batch = [(
                0u64,
                Completion {
                    result: 0,
                    flags: 0,
                },
            ); REAP_BATCH];
            let mut count = 0;
            {
                let mut ring = self.ring.borrow_mut();
                for cqe in ring.completion().take(REAP_BATCH) {
                    batch[count] = (
                        cqe.user_data(),
                        Completion {
                            result: cqe.result(),
                            flags: cqe.flags(),
                        },
                    );
                    count += 1;
                }
            }
            // The ring is not borrowed here: completing an op may wake tasks or drop buffers.
            for &(user_data, completion) in &batch[..count] {
                self.dispatch(driver, user_data, completion);
            }
            total += count;
            if count < REAP_BATCH {
                return total;
            }
        }
    }

    fn dispatch(&self, driver: &IoDriver, user_data: u64, completion: Completion) {
        match user_data {
            IGNORE_TOKEN => {}
            EVENTFD_TOKEN => {
                self.eventfd_armed.set(false);
                self.arm_eventfd();
            }
            key => self.complete_op(driver, key as usize, completion),
        }
    }

    fn complete_op(&self, driver: &IoDriver, key: usize, completion: Completion) {
        let mut ops = self.ops.borrow_mut();
        let Some(slot) = ops.get_mut(key) else { return };
        match slot {
            Lifecycle::Submitted => *slot = Lifecycle::Completed(completion),
            Lifecycle::Waiting(_) => {
                let Lifecycle::Waiting(waker) =
                    std::mem::replace(slot, Lifecycle::Completed(completion))
                else {
                    unreachable!("matched Waiting above")
                };
                drop(ops);
                waker.wake();
            }
            Lifecycle::Hooked(_) => {
                let Lifecycle::Hooked(hook) =
                    std::mem::replace(slot, Lifecycle::Completed(completion))
                else {
                    unreachable!("matched Hooked above")
                };
                drop(ops);
                hook.completed();
            }
            Lifecycle::Ignored(_, discard) => {
                // The CQE the kernel owed us: now the data may go, and the result with it.
                let discard = *discard;
                let data = ops.remove(key);
                drop(ops);
                drop(data);
                discard(completion);
            }
            Lifecycle::Completed(_) => {}
            Lifecycle::Multi(state) => {
                if !cqueue::more(completion.flags) {
                    state.finished = true;
                }
                let consumer = state
                    .consumer
                    .clone()
                    .filter(|_| !state.ignored && state.ready.is_empty() && completion.result > 0);
                if let Some(consumer) = consumer {
                    // Not borrowed while the consumer runs: it may wake tasks, give buffers
                    // back or queue SQEs.
                    drop(ops);
                    if offer(driver, &*consumer, completion) {
                        if cqueue::more(completion.flags) {
                            return;
                        }
                        // The stream ended: its poller must learn it (and re-arm).
                        ops = self.ops.borrow_mut();
                        if let Some(Lifecycle::Multi(state)) = ops.get_mut(key) {
                            if let Some(waker) = state.waker.take() {
                                drop(ops);
                                waker.wake();
                            }
                        }
                        return;
                    }
                    ops = self.ops.borrow_mut();
                }
                let Some(Lifecycle::Multi(state)) = ops.get_mut(key) else {
                    return;
                };
                if state.ignored {
                    let discard = state.discard;
                    if state.finished {
                        ops.remove(key);
                    }
                    drop(ops);
                    discard(completion);
                } else {
                    state.ready.push_back(completion);
                    let waker = state.waker.take();
                    drop(ops);
                    if let Some(waker) = waker {
                        waker.wake();
                    }
                }
            }
        }
    }

    /// Number of ops whose CQE the kernel still owes (used by shutdown and leak tests).
    pub(crate) fn ops_in_flight(&self) -> usize {
        self.ops.borrow().len()
    }

    /// Reactor exit: cancels everything in flight and waits (bounded) for the kernel to give
    /// every buffer back. Whatever the kernel has not released by then is leaked, not freed.
    pub(crate) fn shutdown(&self, driver: &IoDriver) {
        self.push(
            opcode::AsyncCancel2::new(types::CancelBuilder::any())
                .build()
                .user_data(IGNORE_TOKEN),
        );
        for _ in 0..50 {
            let owed = self.ops_in_flight() + usize::from(self.eventfd_armed.get());
            if owed == 0 {
                break;
            }
            let _ = self.submit(Some(Some(Duration::from_millis(20))));
            let mut ring = self.ring.borrow_mut();
            let done: Vec<(u64, Completion)> = ring
                .completion()
                .map(|cqe| {
                    (
                        cqe.user_data(),
                        Completion {
                            result: cqe.result(),
                            flags: cqe.flags(),
                        },
                    )
                })
                .collect();
            drop(ring);
            for (user_data, completion) in done {
                if user_data == EVENTFD_TOKEN {
                    self.eventfd_armed.set(false);
                } else {
                    self.dispatch(driver, user_data, completion);
                }
            }
        }
        // Fire-and-forget SQEs queued by the last completions (the closes of the sockets
        // they held) owe us no CQE but must still reach the kernel, or their fds leak.
        if sq_state(&mut self.ring.borrow_mut()).0 > 0 {
            let _ = self.submit(None);
        }
    }
}

/// Offers a receive completion's bytes to `consumer`; its buffer goes back to the ring when
/// they were taken.
fn offer(driver: &IoDriver, consumer: &dyn RecvConsumer, completion: Completion) -> bool {
    let Some(bid) = completion.buffer_id() else {
        return false;
    };
    let taken = consumer.offer(driver.buffer_bytes(bid, completion.result as usize));
    if taken {
        driver.recycle_buffer(bid);
    }
    taken
}

/// SQEs queued for submission, and whether the kernel holds completions back until we
/// enter it (deferred task work flagged by `IORING_SQ_TASKRUN`, or CQ overflow).
fn sq_state(ring: &mut IoUring) -> (usize, bool) {
    let mut sq = ring.submission();
    sq.sync();
    (sq.len(), sq.taskrun() || sq.cq_overflow())
}

impl Drop for Uring {
    fn drop(&mut self) {
        let quiescent = !self.eventfd_armed.get() && self.ops_in_flight() == 0;
        if let Some(Ok(buf_ring)) = self.buf_ring.get() {
            if !quiescent
                || buf_ring
                    .unregister(&self.ring.borrow().submitter())
                    .is_err()
            {
                // The kernel may still write into it: it must never be freed.
                if let Some(Ok(ring)) = self.buf_ring.take() {
                    std::mem::forget(ring);
                }
            }
        }
        if !quiescent {
            // The kernel may still write into these: never free them.
            let ops = std::mem::replace(self.ops.get_mut(), Slab::new());
            std::mem::forget(ops);
            let buf = std::mem::replace(&mut self.eventfd_buf, Box::new(UnsafeCell::new(0)));
            std::mem::forget(buf);
        }
    }
}
