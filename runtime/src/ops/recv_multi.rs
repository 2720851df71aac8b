//! Multishot receive into the reactor's receive buffers: the provided-buffer ring under
//! io_uring (the kernel picks a buffer only when data arrives), the driver's buffer pool in
//! readiness mode (a buffer is taken for the call and put back if nothing came).

use std::io;

use io_uring::{opcode, squeue::Entry, types};

use crate::driver::{receive_into_pool, Completion, Epoll, Interest, MultiAble, SharedFd};
use crate::driver::{BUF_GROUP, RECV_BUFFER_SIZE};

pub(crate) struct RecvMulti {
    fd: SharedFd,
}

impl RecvMulti {
    pub(crate) fn new(fd: &SharedFd) -> RecvMulti {
        RecvMulti { fd: fd.clone() }
    }
}

// SAFETY: a buffer-select receive points to no memory of ours; buffers come from the
// registered ring, which outlives every op of the reactor.
unsafe impl MultiAble for RecvMulti {
    fn uring_entry(&self) -> Entry {
        opcode::RecvMulti::new(types::Fd(self.fd.raw()), BUF_GROUP).build()
    }

    fn readiness(&self) -> (&SharedFd, Interest) {
        (&self.fd, Interest::Read)
    }

    fn call(&mut self, epoll: &Epoll) -> io::Result<Completion> {
        let completion = receive_into_pool(epoll, self.fd.raw())?;
        if completion.result > 0 && (completion.result as usize) < RECV_BUFFER_SIZE {
            // A short read drained the socket: the next call would only meet EAGAIN, and
            // data arriving later raises a new edge (what tokio does too). A FIN already
            // queued behind the data is not lost: its event set the registration's sticky
            // "read closed", which keeps calls going.
            epoll.clear_ready(&self.fd, Interest::Read);
        }
        Ok(completion)
    }

    fn discard(completion: Completion) {
        if let Some(bid) = completion.buffer_id() {
            crate::driver::with_current(|driver| driver.recycle_buffer(bid));
        }
    }
}
