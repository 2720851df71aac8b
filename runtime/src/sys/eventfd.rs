//! The eventfd a reactor sleeps on: other threads write it to wake the reactor.

use std::io;
use std::os::fd::RawFd;

use super::syscall;

/// A non-blocking, close-on-exec eventfd, closed on drop.
#[derive(Debug)]
pub(crate) struct EventFd {
    fd: RawFd,
}

impl EventFd {
    pub(crate) fn new() -> io::Result<EventFd> {
        let fd = syscall!(eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK))?;
        Ok(EventFd { fd })
    }

    pub(crate) fn fd(&self) -> RawFd {
        self.fd
    }

    /// Makes the eventfd readable.
    pub(crate) fn write(&self) {
        write(self.fd);
    }
}

/// Adds one to eventfd `fd`. EAGAIN (counter saturated) still leaves it readable, which is
/// all a waker needs.
pub(crate) fn write(fd: RawFd) {
    let one: u64 = 1;
    let _ = syscall!(write(fd, (&one as *const u64).cast(), 8));
}

/// Resets eventfd `fd` (non-blocking) to unreadable: one read takes the whole counter.
pub(crate) fn drain(fd: RawFd) {
    let mut value: u64 = 0;
    let _ = syscall!(read(fd, (&mut value as *mut u64).cast(), 8));
}

impl Drop for EventFd {
    fn drop(&mut self) {
        super::close(self.fd);
    }
}
