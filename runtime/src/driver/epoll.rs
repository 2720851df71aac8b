//! The readiness backend, for where io_uring is refused (container seccomp profiles,
//! `kernel.io_uring_disabled`, gVisor): one epoll instance per reactor.
//!
//! - An fd is registered once, edge-triggered for both directions, the first time an op on
//!   it would block; the registration lives until the fd closes. Ops try their syscall first
//!   and only then leave a waker here (see `op.rs`), so an edge that arrives while nobody
//!   waits is not lost: the next call sees the data.
//! - The reactor's eventfd is registered too, so remote wakes end `epoll_wait` exactly as
//!   they end `io_uring_enter`.
//! - Receive buffers for multishot-style receives come from a per-reactor pool of the same
//!   size as the io_uring provided-buffer ring, so `RecvStream` behaves the same on both.

use std::cell::{Cell, RefCell};
use std::io;
use std::os::fd::RawFd;
use std::sync::Arc;
use std::task::Waker;
use std::time::Duration;

use super::fd::{SharedFd, NO_TOKEN};
use super::op::Interest;
use super::{RECV_BUFFERS, RECV_BUFFER_SIZE};
use crate::slab::Slab;
use crate::stats::Counters;
use crate::sys::{self, eventfd, syscall};

/// `epoll_event.u64` of the reactor's eventfd.
const EVENTFD_TOKEN: u64 = u64::MAX;
/// Events taken per `epoll_wait`.
const EVENT_BATCH: usize = 256;

/// One registered fd: the tasks waiting for it to become readable or writable, and whether
/// it is known to be (a call that met EAGAIN clears the flag, the next edge sets it).
struct Waiters {
    read: Vec<Waker>,
    write: Vec<Waker>,
    readable: bool,
    writable: bool,
    /// The peer closed its side, or the socket failed (sticky: a read or write then never
    /// blocks again, so a cleared `readable` must not hide it — a FIN queued behind the
    /// data of a short read raises no further edge).
    read_closed: bool,
    write_closed: bool,
}

impl Waiters {
    fn new() -> Waiters {
        Waiters {
            read: Vec::new(),
            write: Vec::new(),
            readable: true,
            writable: true,
            read_closed: false,
            write_closed: false,
        }
    }

    /// Whether a call for `interest` may succeed.
    fn may_be_ready(&self, interest: Interest) -> bool {
        match interest {
            Interest::Read => self.readable || self.read_closed,
            Interest::Write => self.writable || self.write_closed,
        }
    }

    /// The waiters of one direction, and its readiness flag.
    fn side(&mut self, interest: Interest) -> (&mut Vec<Waker>, &mut bool) {
        match interest {
            Interest::Read => (&mut self.read, &mut self.readable),
            Interest::Write => (&mut self.write, &mut self.writable),
        }
    }
}

pub(crate) struct Epoll {
    epfd: RawFd,
    eventfd: RawFd,
    ios: RefCell<Slab<Waiters>>,
    events: RefCell<Vec<libc::epoll_event>>,
    /// Events gathered by the last `epoll_wait` and not dispatched yet.
    ready: Cell<usize>,
    counters: Arc<Counters>,
    pool: UserBuffers,
    /// Wakers taken from `ios` during a dispatch (reused, so reaping allocates nothing).
    scratch: RefCell<Vec<Waker>>,
}

impl Epoll {
    pub(crate) fn new(eventfd: RawFd, counters: Arc<Counters>) -> io::Result<Epoll> {
        let epfd = syscall!(epoll_create1(libc::EPOLL_CLOEXEC))?;
        let mut event = libc::epoll_event {
            events: (libc::EPOLLIN | libc::EPOLLET) as u32,
            u64: EVENTFD_TOKEN,
        };
        if let Err(err) = syscall!(epoll_ctl(epfd, libc::EPOLL_CTL_ADD, eventfd, &mut event)) {
            sys::close(epfd);
            return Err(err);
        }
        Ok(Epoll {
            epfd,
            eventfd,
            ios: RefCell::new(Slab::new()),
            events: RefCell::new(vec![libc::epoll_event { events: 0, u64: 0 }; EVENT_BATCH]),
            ready: Cell::new(0),
            counters,
            pool: UserBuffers::new(),
            scratch: RefCell::new(Vec::new()),
        })
    }

    /// Whether a call on `fd` for `interest` may succeed: `false` only when the last call
    /// met EAGAIN and no edge came since (the call would be a wasted syscall).
    pub(crate) fn may_be_ready(&self, fd: &SharedFd, interest: Interest) -> bool {
        self.with_registration(fd, |waiters| waiters.may_be_ready(interest))
            .unwrap_or(true)
    }

    /// Marks a registered `fd` not ready for `interest` without a waiter: a short read
    /// drained the socket, and new data brings a fresh edge. (An unregistered fd stays
    /// "maybe ready": its next call finds out.)
    pub(crate) fn clear_ready(&self, fd: &SharedFd, interest: Interest) {
        self.with_registration(fd, |waiters| *waiters.side(interest).1 = false);
    }

    /// Runs `f` on `fd`'s registration; `None` when it has none.
    fn with_registration<R>(&self, fd: &SharedFd, f: impl FnOnce(&mut Waiters) -> R) -> Option<R> {
        let token = fd.token();
        if token == NO_TOKEN {
            return None;
        }
        self.ios.borrow_mut().get_mut(token as usize).map(f)
    }

    /// Leaves `waker` to be woken when `fd` becomes ready for `interest` (a call just met
    /// EAGAIN, or [`Epoll::may_be_ready`] said it would); registers the fd on its first
    /// wait.
    pub(crate) fn await_readiness(
        &self,
        fd: &SharedFd,
        interest: Interest,
        waker: &Waker,
    ) -> io::Result<()> {
        let mut ios = self.ios.borrow_mut();
        let mut token = fd.token();
        if token == NO_TOKEN {
            let key = ios.insert(Waiters::new());
            let mut event = libc::epoll_event {
                events: (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLET) as u32,
                u64: key as u64,
            };
            if let Err(err) = syscall!(epoll_ctl(
                self.epfd,
                libc::EPOLL_CTL_ADD,
                fd.raw(),
                &mut event
            )) {
                ios.remove(key);
                return Err(err);
            }
            token = key as u32;
            fd.set_token(token);
        }
        let (list, ready) = ios
            .get_mut(token as usize)
            .expect("a registered fd keeps its waiters until it closes")
            .side(interest);
        *ready = false;
        if !list.iter().any(|w| w.will_wake(waker)) {
            list.push(waker.clone());
        }
        Ok(())
    }

    /// Drops the registration of an fd about to be closed (closing removes it from epoll).
    pub(crate) fn forget(&self, token: u32) {
        if token != NO_TOKEN {
            self.ios.borrow_mut().remove(token as usize);
        }
    }

    /// Gathers ready events: without blocking (`wait == None`), until one arrives
    /// (`Some(None)`), or until the timeout. Events gathered earlier and not reaped yet make
    /// it return at once.
    pub(crate) fn wait(&self, wait: Option<Option<Duration>>) -> io::Result<()> {
        if self.ready.get() > 0 {
            return Ok(());
        }
        let timeout_ms = match wait {
            None => 0,
            Some(None) => -1,
            // Rounded up: waking early would only spin the loop once more.
            Some(Some(timeout)) => timeout
                .as_nanos()
                .div_ceil(1_000_000)
                .clamp(1, i32::MAX as u128) as i32,
        };
        let mut events = self.events.borrow_mut();
        Counters::bump_local(&self.counters.enters);
        match syscall!(epoll_wait(
            self.epfd,
            events.as_mut_ptr(),
            events.len() as i32,
            timeout_ms
        )) {
            Ok(n) => self.ready.set(n as usize),
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
        Ok(())
    }

    /// Whether events are ready, checked with a non-blocking `epoll_wait` (kept for `reap`).
    pub(crate) fn has_ready_work(&self) -> bool {
        let _ = self.wait(None);
        self.ready.get() > 0
    }

    /// Wakes the waiters of every gathered event. Returns the number of events.
    pub(crate) fn reap(&self) -> usize {
        let count = self.ready.replace(0);
        let mut scratch = self.scratch.borrow_mut();
        {
            let events = self.events.borrow();
            let mut ios = self.ios.borrow_mut();
            for event in &events[..count] {
                let (mask, token) = (event.events as i32, event.u64);
                if token == EVENTFD_TOKEN {
                    eventfd::drain(self.eventfd);
                    continue;
                }
                // A token freed (and maybe reused) since the wait: at worst a spurious wake.
                let Some(waiters) = ios.get_mut(token as usize) else {
                    continue;
                };
                let failed = libc::EPOLLHUP | libc::EPOLLERR;
                if mask & (libc::EPOLLRDHUP | failed) != 0 {
                    waiters.read_closed = true;
                }
                if mask & failed != 0 {
                    waiters.write_closed = true;
                }
                for (interest, events) in [
                    (
                        Interest::Read,
                        libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLPRI | failed,
                    ),
                    (Interest::Write, libc::EPOLLOUT | failed),
                ] {
                    if mask & events != 0 {
                        let (list, ready) = waiters.side(interest);
                        *ready = true;
                        scratch.append(list);
                    }
                }
            }
        }
        // Not borrowing anything of ours: a waker may be any code.
        scratch.drain(..).for_each(Waker::wake);
        count
    }

    /// Registered fds (each is an open socket that waited at least once).
    pub(crate) fn registered(&self) -> usize {
        self.ios.borrow().len()
    }

    /// Counts a syscall an op made (the readiness analog of an SQE).
    pub(crate) fn count_call(&self) {
        Counters::bump_local(&self.counters.submissions);
    }

    pub(crate) fn pool(&self) -> &UserBuffers {
        &self.pool
    }
}

impl Drop for Epoll {
    fn drop(&mut self) {
        sys::close(self.epfd);
    }
}

/// Receive buffers of the readiness backend, with ids like a provided-buffer ring's:
/// allocated on first use, at most [`RECV_BUFFERS`], never freed while the reactor lives.
pub(crate) struct UserBuffers {
    buffers: RefCell<Vec<Box<[u8]>>>,
    free: RefCell<Vec<u16>>,
}

impl UserBuffers {
    fn new() -> UserBuffers {
        UserBuffers {
            buffers: RefCell::new(Vec::new()),
            free: RefCell::new(Vec::new()),
        }
    }

    /// A free buffer's id and memory, or `None` when all [`RECV_BUFFERS`] are out.
    pub(crate) fn take(&self) -> Option<(u16, *mut u8, usize)> {
        let mut buffers = self.buffers.borrow_mut();
        let bid = match self.free.borrow_mut().pop() {
            Some(bid) => bid,
            None if buffers.len() < RECV_BUFFERS as usize => {
                buffers.push(vec![0u8; RECV_BUFFER_SIZE].into_boxed_slice());
                (buffers.len() - 1) as u16
            }
            None => return None,
        };
        let buffer = &mut buffers[bid as usize];
        Some((bid, buffer.as_mut_ptr(), buffer.len()))
    }

    /// Returns buffer `bid` to the pool.
    pub(crate) fn put_back(&self, bid: u16) {
        self.free.borrow_mut().push(bid);
    }

    /// The first `len` bytes of buffer `bid`, which a completion handed out.
    pub(crate) fn bytes(&self, bid: u16, len: usize) -> &[u8] {
        let buffers = self.buffers.borrow();
        let Some(buffer) = buffers.get(bid as usize) else {
            return &[];
        };
        let (ptr, len) = (buffer.as_ptr(), len.min(buffer.len()));
        // SAFETY: each buffer is a heap allocation that is never freed or moved while the
        // pool lives (the Vec only grows, moving the boxes, not their contents), and the
        // caller's chunk borrows the driver that owns the pool. Buffer `bid` is handed out
        // to that chunk alone, so nothing writes it until it is put back.
        unsafe { std::slice::from_raw_parts(ptr, len) }
    }
}
