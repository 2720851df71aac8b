//! Single-shot socket ops. Each owns its buffers and fd until it completes, points its SQE
//! at heap memory only (see `OpAble`'s contract), and makes the same call with `MSG_DONTWAIT`
//! in readiness mode.

use std::io;

use io_uring::{opcode, squeue::Entry, types};

use crate::buf::{IoBuf, IoBufMut};
use crate::driver::{Completion, Interest, Op, OpAble, SharedFd};
use crate::sys::addr::RawAddr;
use crate::sys::syscall;

pub(crate) struct Recv<B> {
    fd: SharedFd,
    buf: B,
}

pub(crate) fn recv<B: IoBufMut>(fd: &SharedFd, buf: B) -> Op<Recv<B>> {
    Op::new(Recv {
        fd: fd.clone(),
        buf,
    })
}

impl<B: IoBufMut> Recv<B> {
    fn target(&mut self) -> (*mut u8, usize) {
        let len = self.buf.bytes_total().min(u32::MAX as usize);
        (self.buf.stable_mut_ptr(), len)
    }
}

// SAFETY: the entry points into `buf`'s stable memory, which the op owns.
unsafe impl<B: IoBufMut> OpAble for Recv<B> {
    type Output = (io::Result<usize>, B);

    fn uring_entry(&mut self) -> Entry {
        let (ptr, len) = self.target();
        opcode::Recv::new(types::Fd(self.fd.raw()), ptr, len as u32).build()
    }

    fn readiness(&self) -> Option<(&SharedFd, Interest)> {
        Some((&self.fd, Interest::Read))
    }

    fn call(&mut self) -> io::Result<u32> {
        let (ptr, len) = self.target();
        syscall!(recv(self.fd.raw(), ptr.cast(), len, libc::MSG_DONTWAIT)).map(|n| n as u32)
    }

    fn complete(mut self, completion: Completion) -> Self::Output {
        let result = completion.into_io().map(|n| {
            // SAFETY: the kernel wrote `n` bytes at the start of the buffer.
            unsafe { self.buf.set_init(n as usize) };
            n as usize
        });
        (result, self.buf)
    }
}

pub(crate) struct Send<B> {
    fd: SharedFd,
    buf: B,
    offset: usize,
}

/// Sends `buf[offset..]`.
pub(crate) fn send<B: IoBuf>(fd: &SharedFd, buf: B, offset: usize) -> Op<Send<B>> {
    let offset = offset.min(buf.bytes_init());
    Op::new(Send {
        fd: fd.clone(),
        buf,
        offset,
    })
}

impl<B: IoBuf> Send<B> {
    fn source(&self) -> (*const u8, usize) {
        let len = (self.buf.bytes_init() - self.offset).min(u32::MAX as usize);
        // SAFETY: offset ≤ bytes_init (clamped in `send`), so the pointer stays inside the
        // buffer.
        (unsafe { self.buf.stable_ptr().add(self.offset) }, len)
    }
}

// SAFETY: the entry points into `buf`'s stable memory, which the op owns.
unsafe impl<B: IoBuf> OpAble for Send<B> {
    type Output = (io::Result<usize>, B);

    fn uring_entry(&mut self) -> Entry {
        let (ptr, len) = self.source();
        opcode::Send::new(types::Fd(self.fd.raw()), ptr, len as u32)
            .flags(libc::MSG_NOSIGNAL)
            .build()
    }

    fn readiness(&self) -> Option<(&SharedFd, Interest)> {
        Some((&self.fd, Interest::Write))
    }

    fn call(&mut self) -> io::Result<u32> {
        let (ptr, len) = self.source();
        let flags = libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT;
        syscall!(send(self.fd.raw(), ptr.cast(), len, flags)).map(|n| n as u32)
    }

    fn complete(self, completion: Completion) -> Self::Output {
        (completion.into_io().map(|n| n as usize), self.buf)
    }
}

pub(crate) struct SendMsg<B> {
    fd: SharedFd,
    bufs: Vec<B>,
    /// The msghdr for two or more buffers; a single buffer goes out with a plain `send`,
    /// which spares the kernel importing a msghdr and an iovec array.
    msg: Option<PooledMsg>,
}

/// A `msghdr` and its iovec array: what a `sendmsg` SQE points at.
struct MsgBuf {
    msg: libc::msghdr,
    iovecs: Vec<libc::iovec>,
}

/// A [`MsgBuf`] borrowed from this thread's pool and returned to it on drop, so gather
/// writes allocate nothing once warm.
struct PooledMsg(Option<Box<MsgBuf>>);

/// Message headers a reactor keeps for reuse.
const MSG_POOL_CAPACITY: usize = 256;

thread_local! {
    // Boxed on purpose: an in-flight SQE points at the msghdr, so it must not move when the
    // pool's Vec grows.
    #[allow(clippy::vec_box)]
    static MSG_POOL: std::cell::RefCell<Vec<Box<MsgBuf>>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl PooledMsg {
    fn take() -> PooledMsg {
        let pooled = MSG_POOL
            .try_with(|pool| pool.borrow_mut().pop())
            .ok()
            .flatten();
        PooledMsg(Some(pooled.unwrap_or_else(|| {
            Box::new(MsgBuf {
                // SAFETY: all-zero is a valid msghdr (no name, no iovecs, no control data).
                msg: unsafe { std::mem::zeroed() },
                iovecs: Vec::new(),
            })
        })))
    }

    fn get(&mut self) -> &mut MsgBuf {
        self.0
            .as_mut()
            .expect("a PooledMsg holds its buffer until dropped")
    }
}

impl Drop for PooledMsg {
    fn drop(&mut self) {
        if let Some(mut msg) = self.0.take() {
            msg.iovecs.clear();
            let _ = MSG_POOL.try_with(|pool| {
                let mut pool = pool.borrow_mut();
                if pool.len() < MSG_POOL_CAPACITY {
                    pool.push(msg);
                }
            });
        }
    }
}

/// The most iovecs one `sendmsg` takes (Linux's `UIO_MAXIOV`): with more, the kernel refuses
/// the whole call with `EMSGSIZE`.
pub(crate) const IOV_MAX: usize = 1024;

/// Sends the first [`IOV_MAX`] of `bufs` with one `sendmsg` (a single buffer with a plain
/// `send`); the count it returns covers
/// only those, so the caller sends the rest as it would after any partial send.
pub(crate) fn writev<B: IoBuf>(fd: &SharedFd, bufs: Vec<B>) -> Op<SendMsg<B>> {
    if bufs.len() == 1 {
        return Op::new(SendMsg {
            fd: fd.clone(),
            bufs,
            msg: None,
        });
    }
    let mut pooled = PooledMsg::take();
    let msg = pooled.get();
    msg.iovecs
        .extend(bufs.iter().take(IOV_MAX).map(|buf| libc::iovec {
            iov_base: buf.stable_ptr() as *mut libc::c_void,
            iov_len: buf.bytes_init(),
        }));
    // SAFETY: all-zero is a valid msghdr (no name, no control data).
    msg.msg = unsafe { std::mem::zeroed() };
    msg.msg.msg_iov = msg.iovecs.as_mut_ptr();
    msg.msg.msg_iovlen = msg.iovecs.len() as _;
    Op::new(SendMsg {
        fd: fd.clone(),
        bufs,
        msg: Some(pooled),
    })
}

impl<B: IoBuf> SendMsg<B> {
    /// The single buffer's bytes (when there is no msghdr).
    fn single(&self) -> (*const u8, usize) {
        let buf = &self.bufs[0];
        (buf.stable_ptr(), buf.bytes_init().min(u32::MAX as usize))
    }
}

// SAFETY: the entry points at the boxed msghdr, which points at the iovec Vec's heap memory
// (not resized while the op lives), which points into the buffers' stable memory — or, for
// one buffer, straight into its stable memory: the op owns all of them.
unsafe impl<B: IoBuf> OpAble for SendMsg<B> {
    type Output = (io::Result<usize>, Vec<B>);

    fn uring_entry(&mut self) -> Entry {
        let fd = types::Fd(self.fd.raw());
        match &mut self.msg {
            Some(msg) => opcode::SendMsg::new(fd, &msg.get().msg)
                .flags(libc::MSG_NOSIGNAL as u32)
                .build(),
            None => {
                let (ptr, len) = self.single();
                opcode::Send::new(fd, ptr, len as u32)
                    .flags(libc::MSG_NOSIGNAL)
                    .build()
            }
        }
    }

    fn readiness(&self) -> Option<(&SharedFd, Interest)> {
        Some((&self.fd, Interest::Write))
    }

    fn call(&mut self) -> io::Result<u32> {
        let flags = libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT;
        let fd = self.fd.raw();
        match &mut self.msg {
            Some(msg) => {
                let msg: *const libc::msghdr = &msg.get().msg;
                syscall!(sendmsg(fd, msg, flags)).map(|n| n as u32)
            }
            None => {
                let (ptr, len) = self.single();
                syscall!(send(fd, ptr.cast(), len, flags)).map(|n| n as u32)
            }
        }
    }

    fn complete(self, completion: Completion) -> Self::Output {
        (completion.into_io().map(|n| n as usize), self.bufs)
    }
}

pub(crate) struct Connect {
    fd: SharedFd,
    addr: Box<RawAddr>,
    /// Readiness mode: `connect` was called once and is in progress.
    started: bool,
}

pub(crate) fn connect(fd: &SharedFd, addr: RawAddr) -> Op<Connect> {
    Op::new(Connect {
        fd: fd.clone(),
        addr: Box::new(addr),
        started: false,
    })
}

// SAFETY: the entry points at the boxed address, which the op owns.
unsafe impl OpAble for Connect {
    type Output = io::Result<()>;

    fn uring_entry(&mut self) -> Entry {
        opcode::Connect::new(types::Fd(self.fd.raw()), self.addr.as_ptr(), self.addr.len).build()
    }

    fn readiness(&self) -> Option<(&SharedFd, Interest)> {
        Some((&self.fd, Interest::Write))
    }

    /// A non-blocking connect answers `EINPROGRESS`; once the socket is writable a second
    /// `connect` reports the outcome (`EISCONN`: connected; `EALREADY`: not yet).
    fn call(&mut self) -> io::Result<u32> {
        if !self.started {
            self.fd.ensure_nonblocking()?;
        }
        let result = syscall!(connect(self.fd.raw(), self.addr.as_ptr(), self.addr.len));
        let first = !std::mem::replace(&mut self.started, true);
        match result {
            Ok(_) => Ok(0),
            Err(err) => match err.raw_os_error() {
                Some(libc::EISCONN) if !first => Ok(0),
                Some(libc::EINPROGRESS | libc::EALREADY) => {
                    Err(io::Error::from(io::ErrorKind::WouldBlock))
                }
                _ => Err(err),
            },
        }
    }

    fn complete(self, completion: Completion) -> Self::Output {
        completion.into_io().map(drop)
    }
}

pub(crate) struct Shutdown {
    fd: SharedFd,
    how: i32,
}

pub(crate) fn shutdown(fd: &SharedFd, how: std::net::Shutdown) -> Op<Shutdown> {
    let how = match how {
        std::net::Shutdown::Read => libc::SHUT_RD,
        std::net::Shutdown::Write => libc::SHUT_WR,
        std::net::Shutdown::Both => libc::SHUT_RDWR,
    };
    Op::new(Shutdown {
        fd: fd.clone(),
        how,
    })
}

// SAFETY: the entry points to no memory.
unsafe impl OpAble for Shutdown {
    type Output = io::Result<()>;

    fn uring_entry(&mut self) -> Entry {
        opcode::Shutdown::new(types::Fd(self.fd.raw()), self.how).build()
    }

    fn readiness(&self) -> Option<(&SharedFd, Interest)> {
        None
    }

    fn call(&mut self) -> io::Result<u32> {
        syscall!(shutdown(self.fd.raw(), self.how)).map(|_| 0)
    }

    fn complete(self, completion: Completion) -> Self::Output {
        completion.into_io().map(drop)
    }
}

pub(crate) struct Close {
    fd: std::os::fd::RawFd,
}

/// Closes `fd`, which the caller owns exclusively.
pub(crate) fn close(fd: std::os::fd::RawFd) -> Op<Close> {
    Op::new(Close { fd })
}

// SAFETY: the entry points to no memory.
unsafe impl OpAble for Close {
    type Output = io::Result<()>;

    fn uring_entry(&mut self) -> Entry {
        opcode::Close::new(types::Fd(self.fd)).build()
    }

    fn readiness(&self) -> Option<(&SharedFd, Interest)> {
        None
    }

    fn call(&mut self) -> io::Result<u32> {
        // Never retried: after EINTR the fd is closed anyway on Linux.
        match syscall!(close(self.fd)) {
            Err(err) if err.kind() == io::ErrorKind::Interrupted => Ok(0),
            result => result.map(|_| 0),
        }
    }

    fn complete(self, completion: Completion) -> Self::Output {
        completion.into_io().map(drop)
    }
}
