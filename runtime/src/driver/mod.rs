//! The driver: the seam between the reactor and the kernel.
//!
//! [`IoDriver`] is what a reactor owns: a [`Backend`] — io_uring (completions) or epoll
//! (readiness) — behind one set of methods the reactor loop calls (`submit`, `reap`,
//! `has_ready_work`, `shutdown`), plus the receive buffers both share. Ops never see the
//! backend: each op type (in `crate::ops`) describes itself once for both, and
//! [`op::Op`] / [`op::MultiOp`] run it (the whole op lifecycle is in `op.rs`). Dispatch is a
//! `match` on the enum, not a `dyn` call per op.
//!
//! Which backend a runtime gets is decided once, in `select.rs`.

mod epoll;
pub(crate) mod fd;
pub(crate) mod op;
mod select;
mod uring;

use std::cell::{Cell, RefCell};
use std::io;
use std::os::fd::RawFd;
use std::rc::Rc;
use std::sync::Arc;
use std::task::Waker;
use std::time::Duration;

pub(crate) use fd::SharedFd;
pub use op::CompletionHook;
pub(crate) use op::{Completion, Interest, MultiAble, MultiOp, Op, OpAble, F_MORE};
pub(crate) use select::resolve;
pub use select::Driver;
pub use uring::RingFlags;
pub(crate) use uring::BUF_GROUP;

use crate::current::{self, Current};
use crate::net::RecvConsumer;
use crate::stats::Counters;
pub(crate) use epoll::{receive_into_pool, Epoll};
use uring::Uring;

/// Receive buffers per reactor (the provided-buffer ring, or the epoll pool), and their size.
const RECV_BUFFERS: u16 = 256;
pub(crate) const RECV_BUFFER_SIZE: usize = 16 * 1024;

// One per reactor: boxing the larger variant would save nothing and add a pointer chase to
// every op.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Backend {
    Uring(Uring),
    Epoll(Epoll),
}

thread_local! {
    static CURRENT: Current<IoDriver> = const { Current::new() };
}

/// Makes `driver` this thread's driver (reactor start), or clears it (`None`, exit).
pub(crate) fn set_current(driver: Option<Rc<IoDriver>>) {
    current::set(&CURRENT, driver);
}

/// Runs `f` with this thread's driver, or returns `None` off any reactor thread.
#[inline]
pub(crate) fn with_current<R>(f: impl FnOnce(&IoDriver) -> R) -> Option<R> {
    current::with(&CURRENT, f)
}

/// One reactor's driver.
pub(crate) struct IoDriver {
    pub(crate) backend: Backend,
    /// Buffers given back so far (a receiver compares two readings to learn whether one came
    /// back in between).
    buffers_recycled: Cell<u64>,
    /// Receivers that found every buffer out, woken when one comes back.
    buffer_waiters: RefCell<Vec<Waker>>,
}

impl IoDriver {
    /// Sets up `kind` (already resolved, never `Auto`) on the calling (reactor) thread;
    /// `eventfd` is the reactor's wake-up fd, which the driver keeps watching.
    pub(crate) fn new(
        kind: Driver,
        entries: u32,
        defer_taskrun: bool,
        eventfd: RawFd,
        counters: Arc<Counters>,
    ) -> io::Result<IoDriver> {
        let backend = match kind {
            Driver::Epoll => Backend::Epoll(Epoll::new(eventfd, counters)?),
            Driver::IoUring | Driver::Auto => {
                Backend::Uring(Uring::new(entries, defer_taskrun, eventfd, counters)?)
            }
        };
        Ok(IoDriver {
            backend,
            buffers_recycled: Cell::new(0),
            buffer_waiters: RefCell::new(Vec::new()),
        })
    }

    /// The current reactor's driver.
    ///
    /// # Panics
    ///
    /// Off a reactor thread.
    pub(crate) fn current() -> Rc<IoDriver> {
        current::get(&CURRENT, "an I/O operation")
    }

    /// Which backend this is.
    pub(crate) fn kind(&self) -> Driver {
        match self.backend {
            Backend::Uring(_) => Driver::IoUring,
            Backend::Epoll(_) => Driver::Epoll,
        }
    }

    /// The setup flags the kernel granted (all off under epoll).
    pub(crate) fn ring_flags(&self) -> RingFlags {
        match &self.backend {
            Backend::Uring(uring) => uring.flags(),
            Backend::Epoll(_) => RingFlags::default(),
        }
    }

    /// Hands queued work to the kernel and, with `wait`, blocks until something completes or
    /// becomes ready, or the timeout (if any) passes. Without `wait` it costs no syscall when
    /// io_uring has nothing to submit.
    pub(crate) fn submit(&self, wait: Option<Option<Duration>>) -> io::Result<()> {
        match &self.backend {
            Backend::Uring(uring) => uring.submit(wait),
            Backend::Epoll(epoll) => epoll.wait(wait),
        }
    }

    /// Whether completions or events are waiting: what a spinning reactor watches.
    pub(crate) fn has_ready_work(&self) -> bool {
        match &self.backend {
            Backend::Uring(uring) => uring.has_ready_work(),
            Backend::Epoll(epoll) => epoll.has_ready_work(),
        }
    }

    /// Wakes the ops whose completions or readiness arrived. Returns how many there were.
    pub(crate) fn reap(&self) -> usize {
        match &self.backend {
            Backend::Uring(uring) => uring.reap(self),
            Backend::Epoll(epoll) => epoll.reap(),
        }
    }

    /// io_uring: ops whose CQE the kernel still owes. epoll: registered fds. Either returns
    /// to its starting value once the connections that raised it are gone.
    pub(crate) fn ops_in_flight(&self) -> usize {
        match &self.backend {
            Backend::Uring(uring) => uring.ops_in_flight(),
            Backend::Epoll(epoll) => epoll.registered(),
        }
    }

    /// Reactor exit: gives the kernel back nothing it may still write to.
    pub(crate) fn shutdown(&self) {
        if let Backend::Uring(uring) = &self.backend {
            uring.shutdown(self);
        }
    }

    /// Closes `fd` (through the ring when there is one: no syscall of its own).
    pub(crate) fn close_fd(&self, fd: RawFd, token: u32) {
        match &self.backend {
            Backend::Uring(uring) => uring.close_fd(fd),
            Backend::Epoll(epoll) => {
                epoll.forget(token);
                crate::sys::close(fd);
            }
        }
    }

    /// Readiness mode: offers `fd`'s received bytes to `consumer` at each readable edge (see
    /// `epoll.rs`). io_uring offers from the multishot receive instead: nothing to do.
    pub(crate) fn attach_consumer(&self, fd: &SharedFd, consumer: &Rc<dyn RecvConsumer>) {
        if let Backend::Epoll(epoll) = &self.backend {
            epoll.attach_consumer(fd, consumer);
        }
    }

    /// Drops the epoll registration of an fd the caller is about to close itself.
    pub(crate) fn forget_fd(&self, token: u32) {
        if let Backend::Epoll(epoll) = &self.backend {
            epoll.forget(token);
        }
    }

    /// Makes sure receive buffers exist (the provided-buffer ring needs Linux 5.19).
    pub(crate) fn prepare_buffers(&self) -> io::Result<()> {
        match &self.backend {
            Backend::Uring(uring) => uring.buf_ring().map(drop),
            Backend::Epoll(_) => Ok(()),
        }
    }

    /// The first `len` bytes of receive buffer `bid`, which a completion handed out.
    pub(crate) fn buffer_bytes(&self, bid: u16, len: usize) -> &[u8] {
        match &self.backend {
            Backend::Uring(uring) => uring
                .buf_ring_if_set()
                .map_or(&[][..], |ring| ring.bytes(bid, len)),
            Backend::Epoll(epoll) => epoll.pool().bytes(bid, len),
        }
    }

    /// Gives a receive buffer back, and wakes receivers waiting for one.
    pub(crate) fn recycle_buffer(&self, bid: u16) {
        match &self.backend {
            Backend::Uring(uring) => match uring.buf_ring_if_set() {
                Some(ring) => ring.recycle(bid),
                None => return,
            },
            Backend::Epoll(epoll) => epoll.pool().put_back(bid),
        }
        self.buffers_recycled.set(self.buffers_recycled.get() + 1);
        if !self.buffer_waiters.borrow().is_empty() {
            let waiters = std::mem::take(&mut *self.buffer_waiters.borrow_mut());
            waiters.into_iter().for_each(Waker::wake);
        }
    }

    /// How many buffers were given back so far.
    pub(crate) fn buffers_recycled(&self) -> u64 {
        self.buffers_recycled.get()
    }

    /// Wakes `waker` when the next buffer comes back.
    pub(crate) fn wait_for_buffer(&self, waker: &Waker) {
        let mut waiters = self.buffer_waiters.borrow_mut();
        if !waiters.iter().any(|w| w.will_wake(waker)) {
            waiters.push(waker.clone());
        }
    }
}
