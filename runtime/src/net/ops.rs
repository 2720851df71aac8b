//! The socket ops: each owns its buffers and fd until its CQE, and builds its SQE from
//! heap memory only (see `Op::submit`'s contract).

use std::io;

use io_uring::{opcode, types};

use super::addr::RawAddr;
use super::fd::SharedFd;
use crate::buf::{IoBuf, IoBufMut};
use crate::driver::{Completion, Op, OpKind};

pub(crate) struct Recv<B> {
    _fd: SharedFd,
    buf: B,
}

pub(crate) fn recv<B: IoBufMut>(fd: &SharedFd, mut buf: B) -> Op<Recv<B>> {
    let len = buf.bytes_total().min(u32::MAX as usize) as u32;
    let entry = opcode::Recv::new(types::Fd(fd.raw()), buf.stable_mut_ptr(), len).build();
    // SAFETY: the entry points into `buf`'s stable memory, which the op owns.
    unsafe {
        Op::submit(
            Recv {
                _fd: fd.clone(),
                buf,
            },
            entry,
        )
    }
}

impl<B: IoBufMut> OpKind for Recv<B> {
    type Output = (io::Result<usize>, B);

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
    _fd: SharedFd,
    buf: B,
}

/// Sends `buf[offset..]`.
pub(crate) fn send<B: IoBuf>(fd: &SharedFd, buf: B, offset: usize) -> Op<Send<B>> {
    let offset = offset.min(buf.bytes_init());
    let len = (buf.bytes_init() - offset).min(u32::MAX as usize) as u32;
    // SAFETY: offset ≤ bytes_init, so the pointer stays inside the buffer.
    let ptr = unsafe { buf.stable_ptr().add(offset) };
    let entry = opcode::Send::new(types::Fd(fd.raw()), ptr, len)
        .flags(libc::MSG_NOSIGNAL)
        .build();
    // SAFETY: the entry points into `buf`'s stable memory, which the op owns.
    unsafe {
        Op::submit(
            Send {
                _fd: fd.clone(),
                buf,
            },
            entry,
        )
    }
}

impl<B: IoBuf> OpKind for Send<B> {
    type Output = (io::Result<usize>, B);

    fn complete(self, completion: Completion) -> Self::Output {
        (completion.into_io().map(|n| n as usize), self.buf)
    }
}

pub(crate) struct SendMsg<B> {
    _fd: SharedFd,
    bufs: Vec<B>,
    _msg: PooledMsg,
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

/// Sends the first [`IOV_MAX`] of `bufs` with one `sendmsg`; the count it returns covers
/// only those, so the caller sends the rest as it would after any partial send.
pub(crate) fn writev<B: IoBuf>(fd: &SharedFd, bufs: Vec<B>) -> Op<SendMsg<B>> {
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
    let entry = opcode::SendMsg::new(types::Fd(fd.raw()), &msg.msg)
        .flags(libc::MSG_NOSIGNAL as u32)
        .build();
    // SAFETY: the entry points at the boxed msghdr, which points at the iovec Vec's heap
    // memory (not resized while the op lives), which points into the buffers' stable memory:
    // the op owns all three.
    unsafe {
        Op::submit(
            SendMsg {
                _fd: fd.clone(),
                bufs,
                _msg: pooled,
            },
            entry,
        )
    }
}

impl<B: IoBuf> OpKind for SendMsg<B> {
    type Output = (io::Result<usize>, Vec<B>);

    fn complete(self, completion: Completion) -> Self::Output {
        (completion.into_io().map(|n| n as usize), self.bufs)
    }
}

pub(crate) struct Connect {
    _fd: SharedFd,
    _addr: Box<RawAddr>,
}

pub(crate) fn connect(fd: &SharedFd, addr: RawAddr) -> Op<Connect> {
    let addr = Box::new(addr);
    let entry = opcode::Connect::new(types::Fd(fd.raw()), addr.as_ptr(), addr.len).build();
    // SAFETY: the entry points at the boxed address, which the op owns.
    unsafe {
        Op::submit(
            Connect {
                _fd: fd.clone(),
                _addr: addr,
            },
            entry,
        )
    }
}

impl OpKind for Connect {
    type Output = io::Result<()>;

    fn complete(self, completion: Completion) -> Self::Output {
        completion.into_io().map(drop)
    }
}

pub(crate) struct Shutdown {
    _fd: SharedFd,
}

pub(crate) fn shutdown(fd: &SharedFd, how: std::net::Shutdown) -> Op<Shutdown> {
    let how = match how {
        std::net::Shutdown::Read => libc::SHUT_RD,
        std::net::Shutdown::Write => libc::SHUT_WR,
        std::net::Shutdown::Both => libc::SHUT_RDWR,
    };
    let entry = opcode::Shutdown::new(types::Fd(fd.raw()), how).build();
    // SAFETY: the entry points to no memory.
    unsafe { Op::submit(Shutdown { _fd: fd.clone() }, entry) }
}

impl OpKind for Shutdown {
    type Output = io::Result<()>;

    fn complete(self, completion: Completion) -> Self::Output {
        completion.into_io().map(drop)
    }
}

pub(crate) struct Close;

/// Closes `fd`, which the caller owns exclusively.
pub(crate) fn close(fd: std::os::fd::RawFd) -> Op<Close> {
    let entry = opcode::Close::new(types::Fd(fd)).build();
    // SAFETY: the entry points to no memory.
    unsafe { Op::submit(Close, entry) }
}

impl OpKind for Close {
    type Output = io::Result<()>;

    fn complete(self, completion: Completion) -> Self::Output {
        completion.into_io().map(drop)
    }
}
