//! Accept: multishot, one SQE yielding every connection (io_uring), or a loop of `accept4`
//! calls woken by the listener's readability (readiness); and single-shot, one connection
//! per op, for a server that must not take in more than it asked for (the kernel accepts
//! for a multishot op as fast as connections arrive, whatever the server's cap).

use std::io;

use io_uring::{opcode, squeue::Entry, types};

use crate::driver::{Completion, Epoll, Interest, MultiAble, Op, OpAble, SharedFd};
use crate::sys::{self, syscall};

/// One `accept4` (nonblocking, close-on-exec), as a readiness-mode call.
fn accept4(listener: &SharedFd) -> io::Result<u32> {
    listener.ensure_nonblocking()?;
    let flags = libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK;
    let fd = syscall!(accept4(
        listener.raw(),
        std::ptr::null_mut(),
        std::ptr::null_mut(),
        flags
    ))?;
    Ok(fd as u32)
}

/// Closes the socket a completion accepted (nobody took it).
fn close_accepted(completion: Completion) {
    if completion.result >= 0 {
        sys::close(completion.result);
    }
}

/// A single-shot accept: the fd of one connection.
pub(crate) struct Accept {
    listener: SharedFd,
}

/// Accepts one connection on `listener`.
pub(crate) fn accept(listener: &SharedFd) -> Op<Accept> {
    Op::new(Accept {
        listener: listener.clone(),
    })
}

// SAFETY: the entry points to no memory (no peer address is asked for).
unsafe impl OpAble for Accept {
    type Output = io::Result<i32>;

    fn uring_entry(&mut self) -> Entry {
        opcode::Accept::new(
            types::Fd(self.listener.raw()),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        )
        .flags(libc::SOCK_CLOEXEC)
        .build()
    }

    fn readiness(&self) -> Option<(&SharedFd, Interest)> {
        Some((&self.listener, Interest::Read))
    }

    fn call(&mut self) -> io::Result<u32> {
        accept4(&self.listener)
    }

    fn complete(self, completion: Completion) -> io::Result<i32> {
        completion.into_io().map(|fd| fd as i32)
    }

    fn discard(completion: Completion) {
        close_accepted(completion);
    }
}

pub(crate) struct AcceptMulti {
    listener: SharedFd,
}

impl AcceptMulti {
    pub(crate) fn new(listener: &SharedFd) -> AcceptMulti {
        AcceptMulti {
            listener: listener.clone(),
        }
    }
}

// SAFETY: multishot accept points to no memory (no peer address is asked for).
unsafe impl MultiAble for AcceptMulti {
    fn uring_entry(&self) -> Entry {
        opcode::AcceptMulti::new(types::Fd(self.listener.raw()))
            .flags(libc::SOCK_CLOEXEC)
            .build()
    }

    fn readiness(&self) -> (&SharedFd, Interest) {
        (&self.listener, Interest::Read)
    }

    fn call(&mut self, _epoll: &Epoll) -> io::Result<Completion> {
        Ok(Completion {
            result: accept4(&self.listener)? as i32,
            flags: crate::driver::F_MORE,
        })
    }

    fn discard(completion: Completion) {
        close_accepted(completion);
    }
}
