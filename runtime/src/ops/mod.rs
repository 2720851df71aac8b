//! The ops ringhop performs, each defined once for both drivers: the io_uring SQE and the
//! readiness-mode syscall with the direction it waits for (see `driver::op` for how they
//! run). `net/` builds on these and never sees a driver.

mod accept;
mod recv_multi;
mod socket;

pub(crate) use accept::AcceptMulti;
pub(crate) use recv_multi::RecvMulti;
pub(crate) use socket::{close, connect, recv, send, shutdown, writev};

use std::os::fd::RawFd;

use io_uring::{opcode, squeue::Entry, types};

/// The io_uring driver's read of the reactor's eventfd into `buf` (8 bytes), kept in flight
/// so a remote wake completes it. (The epoll driver registers the eventfd instead and drains
/// it with `sys::eventfd::drain` when it fires.)
pub(crate) fn eventfd_read_entry(eventfd: RawFd, buf: *mut u64) -> Entry {
    opcode::Read::new(types::Fd(eventfd), buf.cast(), 8).build()
}
