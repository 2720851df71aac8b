//! Multishot accept: one SQE yields every connection (io_uring), or a loop of `accept4` calls
//! woken by the listener's readability (readiness).

use std::io;

use io_uring::{opcode, squeue::Entry, types};

use crate::driver::{Completion, Epoll, Interest, MultiAble, SharedFd};
use crate::sys::{self, syscall};

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
        self.listener.ensure_nonblocking()?;
        let flags = libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK;
        let fd = syscall!(accept4(
            self.listener.raw(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            flags
        ))?;
        Ok(Completion {
            result: fd,
            flags: crate::driver::F_MORE,
        })
    }

    fn discard(completion: Completion) {
        if completion.result >= 0 {
            sys::close(completion.result);
        }
    }
}
