//! `SharedFd`: a socket descriptor shared by its owner and every op in flight on it, closed
//! (through the ring, when on a reactor) only when the last of them is gone — so the kernel
//! never sees an fd number reused under an op.

use std::os::fd::RawFd;
use std::rc::Rc;

use crate::context;

#[derive(Clone, Debug)]
pub(crate) struct SharedFd(Rc<Inner>);

#[derive(Debug)]
struct Inner {
    fd: RawFd,
}

impl SharedFd {
    /// Takes ownership of `fd`.
    pub(crate) fn new(fd: RawFd) -> SharedFd {
        SharedFd(Rc::new(Inner { fd }))
    }

    pub(crate) fn raw(&self) -> RawFd {
        self.0.fd
    }

    /// Gives up ownership if this is the last reference, so the caller can close the fd
    /// itself (and await the result).
    pub(crate) fn try_unwrap(self) -> Result<RawFd, SharedFd> {
        match Rc::try_unwrap(self.0) {
            Ok(inner) => {
                let fd = inner.fd;
                std::mem::forget(inner);
                Ok(fd)
            }
            Err(rc) => Err(SharedFd(rc)),
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        let fd = self.fd;
        if context::with(|reactor| reactor.driver.close_fd(fd)).is_none() {
            crate::sys::close(fd);
        }
    }
}
