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
//! - A receive with a consumer (`RecvStream::set_consumer`) is made by the driver itself when
//!   an edge says the socket is readable, and its bytes are offered as they arrive, as
//!   io_uring offers a multishot receive's completions as they are reaped: a receive pump
//!   waiting in its steady state is not polled per request. What the consumer refuses, the
//!   end of the stream and errors are held for the stream's next poll, in order.

use std::cell::{Cell, RefCell};
use std::io;
use std::os::fd::RawFd;
use std::rc::Rc;
use std::sync::Arc;
use std::task::Waker;
use std::time::Duration;

use super::fd::{SharedFd, NO_TOKEN};
use super::op::{Completion, Interest, F_BUFFER, F_MORE};
use super::{RECV_BUFFERS, RECV_BUFFER_SIZE};
use crate::net::RecvConsumer;
use crate::slab::Slab;
use crate::stats::Counters;
use crate::sys::{self, eventfd, syscall};

/// `epoll_event.u64` of the reactor's eventfd.
const EVENTFD_TOKEN: u64 = u64::MAX;
/// Events taken per `epoll_wait`.
const EVENT_BATCH: usize = 256;
/// Receives made for a consumer per readable edge; past them the stream's poller goes on
/// (one busy socket must not hold the reactor).
const INLINE_RECVS: usize = 16;

/// One registered fd: the tasks waiting for it to become readable or writable, and whether
/// it is known to be (a call that met EAGAIN clears the flag, the next edge sets it).
struct Waiters {
    fd: RawFd,
    read: Vec<Waker>,
    write: Vec<Waker>,
    readable: bool,
    writable: bool,
    /// The peer closed its side, or the socket failed (sticky: a read or write then never
    /// blocks again, so a cleared `readable` must not hide it — a FIN queued behind the
    /// data of a short read raises no further edge).
    read_closed: bool,
    write_closed: bool,
    /// Offered the bytes of each readable edge, received by the driver.
    consumer: Option<Rc<dyn RecvConsumer>>,
    /// What an inline receive got and the consumer did not take (a refused chunk, the end,
    /// an error): the stream's next poll returns it, and nothing is received inline before.
    held: Option<Completion>,
}

impl Waiters {
    fn new(fd: RawFd) -> Waiters {
        Waiters {
            fd,
            read: Vec::new(),
            write: Vec::new(),
            readable: true,
            writable: true,
            read_closed: false,
            write_closed: false,
            consumer: None,
            held: None,
        }
    }

    /// Whether a readable edge goes to the consumer rather than to the read waiters.
    fn receives_inline(&self) -> bool {
        self.consumer.is_some() && self.held.is_none()
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
    /// Registrations whose readable edge the driver receives for their consumer (reused).
    inline: RefCell<Vec<u32>>,
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
            inline: RefCell::new(Vec::new()),
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
            let key = ios.insert(Waiters::new(fd.raw()));
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
            let removed = self.ios.borrow_mut().remove(token as usize);
            if let Some(bid) = removed.and_then(|w| w.held).and_then(Completion::buffer_id) {
                self.pool.put_back(bid);
            }
        }
    }

    /// Offers `fd`'s received bytes to `consumer` from now on, as its readable edges come
    /// (the fd must be registered: a receive met `EAGAIN` on it).
    pub(crate) fn attach_consumer(&self, fd: &SharedFd, consumer: &Rc<dyn RecvConsumer>) {
        self.with_registration(fd, |waiters| {
            if !waiters
                .consumer
                .as_ref()
                .is_some_and(|c| Rc::ptr_eq(c, consumer))
            {
                waiters.consumer = Some(consumer.clone());
            }
        });
    }

    /// Stops receiving inline for `fd` (what is held stays for the next receive on it).
    pub(crate) fn detach_consumer(&self, fd: &SharedFd) {
        let consumer = self.with_registration(fd, |waiters| waiters.consumer.take());
        // Dropped outside the registrations' borrow: it may be the last owner of anything.
        drop(consumer);
    }

    /// What an inline receive held for `fd`'s stream, taken.
    pub(crate) fn take_held(&self, fd: &SharedFd) -> Option<Completion> {
        self.with_registration(fd, |waiters| waiters.held.take())
            .flatten()
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
                        if interest == Interest::Read && waiters.receives_inline() {
                            waiters.readable = true;
                            self.inline.borrow_mut().push(token as u32);
                            continue;
                        }
                        let (list, ready) = waiters.side(interest);
                        *ready = true;
                        scratch.append(list);
                    }
                }
            }
        }
        // Not borrowing anything of ours but the scratch list: a waker may be any code.
        scratch.drain(..).for_each(Waker::wake);
        drop(scratch);
        let mut inline = self.inline.take();
        for token in inline.drain(..) {
            self.receive_inline(token);
        }
        self.inline.replace(inline);
        count
    }

    /// Receives for the consumer of registration `token` after a readable edge: until the
    /// socket is drained (`EAGAIN`, or a short read), the consumer refuses, the stream ends
    /// or fails (held for the poller, which is woken), or [`INLINE_RECVS`] receives.
    fn receive_inline(&self, token: u32) {
        for _ in 0..INLINE_RECVS {
            let (fd, consumer) = {
                let ios = self.ios.borrow();
                let Some(waiters) = ios.get(token as usize) else {
                    return;
                };
                match (&waiters.consumer, waiters.held) {
                    (Some(consumer), None) => (waiters.fd, consumer.clone()),
                    _ => return,
                }
            };
            self.count_call();
            let completion = match receive_into_pool(self, fd) {
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                    self.set_readable(token, false);
                    return;
                }
                Err(err) if err.raw_os_error() == Some(libc::ENOBUFS) => break,
                Err(err) => Completion::from_io(Err(err)),
                Ok(completion) => completion,
            };
            if let (Some(bid), true) = (completion.buffer_id(), completion.result > 0) {
                let len = completion.result as usize;
                if consumer.offer(self.pool.bytes(bid, len)) {
                    self.pool.put_back(bid);
                    if len < RECV_BUFFER_SIZE && !self.read_closed(token) {
                        // Drained: the next bytes raise a new edge. (With the peer's FIN
                        // seen, receive on: the end comes next.)
                        self.set_readable(token, false);
                        return;
                    }
                    continue;
                }
            }
            // Refused, the end or an error: the poller takes it next, in order.
            if let Some(waiters) = self.ios.borrow_mut().get_mut(token as usize) {
                waiters.held = Some(completion);
            }
            break;
        }
        self.wake_readers(token);
    }

    fn set_readable(&self, token: u32, readable: bool) {
        if let Some(waiters) = self.ios.borrow_mut().get_mut(token as usize) {
            waiters.readable = readable;
        }
    }

    fn read_closed(&self, token: u32) -> bool {
        self.ios
            .borrow()
            .get(token as usize)
            .is_some_and(|waiters| waiters.read_closed)
    }

    /// Wakes registration `token`'s read waiters (through `scratch`, as `reap` does: the
    /// registration keeps its list's allocation).
    fn wake_readers(&self, token: u32) {
        let mut readers = self.scratch.take();
        if let Some(waiters) = self.ios.borrow_mut().get_mut(token as usize) {
            readers.append(&mut waiters.read);
        }
        readers.drain(..).for_each(Waker::wake);
        self.scratch.replace(readers);
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

/// One non-blocking `recv` of `fd` into a pool buffer, as the completion a multishot
/// receive would post (`ENOBUFS` when every buffer is out; a buffer that got nothing goes
/// back at once).
pub(crate) fn receive_into_pool(epoll: &Epoll, fd: RawFd) -> io::Result<Completion> {
    let Some((bid, ptr, len)) = epoll.pool.take() else {
        return Err(io::Error::from_raw_os_error(libc::ENOBUFS));
    };
    match syscall!(recv(fd, ptr.cast(), len, libc::MSG_DONTWAIT)) {
        Ok(0) => {
            epoll.pool.put_back(bid);
            Ok(Completion {
                result: 0,
                flags: 0,
            })
        }
        Ok(n) => Ok(Completion {
            result: n as i32,
            flags: F_BUFFER | F_MORE | (u32::from(bid) << 16),
        }),
        Err(err) => {
            epoll.pool.put_back(bid);
            Err(err)
        }
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
