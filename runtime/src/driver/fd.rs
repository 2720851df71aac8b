//! `SharedFd`: a descriptor shared by its owner and every op in flight on it, closed only
//! when the last of them is gone — so the kernel never sees an fd number reused under an op.
//!
//! It also carries what the readiness driver learns about the fd once per life: whether it
//! is already non-blocking, and its epoll registration (made on the first `EAGAIN`, removed
//! when the fd closes).

use std::cell::Cell;
use std::os::fd::RawFd;
use std::rc::Rc;

use super::with_current;

#[derive(Clone, Debug)]
pub(crate) struct SharedFd(Rc<Inner>);

#[derive(Debug)]
struct Inner {
    fd: RawFd,
    /// `O_NONBLOCK` is known to be set (readiness mode sets it before blocking calls).
    nonblocking: Cell<bool>,
    /// The epoll driver's registration token, `NO_TOKEN` until the fd first waits.
    token: Cell<u32>,
}

/// No epoll registration.
pub(crate) const NO_TOKEN: u32 = u32::MAX;

impl SharedFd {
    /// Takes ownership of `fd`.
    pub(crate) fn new(fd: RawFd) -> SharedFd {
        SharedFd::with_flags(fd, false)
    }

    /// Takes ownership of `fd`, created with `O_NONBLOCK` already (`accept4` in readiness
    /// mode), which spares the `fcntl` calls.
    pub(crate) fn with_flags(fd: RawFd, nonblocking: bool) -> SharedFd {
        SharedFd(Rc::new(Inner {
            fd,
            nonblocking: Cell::new(nonblocking),
            token: Cell::new(NO_TOKEN),
        }))
    }

    /// Takes ownership of a socket the accept op returned (non-blocking in readiness mode).
    pub(crate) fn accepted(fd: RawFd) -> SharedFd {
        let readiness = with_current(|driver| driver.kind() == super::Driver::Epoll);
        SharedFd::with_flags(fd, readiness.unwrap_or(false))
    }

    pub(crate) fn raw(&self) -> RawFd {
        self.0.fd
    }

    /// Sets `O_NONBLOCK` unless it is known to be set.
    pub(crate) fn ensure_nonblocking(&self) -> std::io::Result<()> {
        if !self.0.nonblocking.get() {
            crate::sys::set_nonblocking(self.0.fd)?;
            self.0.nonblocking.set(true);
        }
        Ok(())
    }

    pub(crate) fn token(&self) -> u32 {
        self.0.token.get()
    }

    pub(crate) fn set_token(&self, token: u32) {
        self.0.token.set(token);
    }

    /// Gives up ownership if this is the last reference, so the caller can close the fd
    /// itself (and await the result). Its epoll registration, if any, is released here.
    pub(crate) fn try_unwrap(self) -> Result<RawFd, SharedFd> {
        match Rc::try_unwrap(self.0) {
            Ok(inner) => {
                let fd = inner.fd;
                let token = inner.token.get();
                std::mem::forget(inner);
                if token != NO_TOKEN {
                    with_current(|driver| driver.forget_fd(token));
                }
                Ok(fd)
            }
            Err(rc) => Err(SharedFd(rc)),
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        let (fd, token) = (self.fd, self.token.get());
        if with_current(|driver| driver.close_fd(fd, token)).is_none() {
            crate::sys::close(fd);
        }
    }
}
