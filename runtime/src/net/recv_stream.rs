//! Multishot receive into the reactor's provided-buffer ring.

use std::fmt;
use std::io;
use std::ops::Deref;
use std::rc::Rc;
use std::task::{Context, Poll};

use io_uring::{cqueue, opcode, types};

use super::fd::SharedFd;
use crate::driver::{Completion, Driver, MultiOp, BUF_GROUP};

/// A stream of received chunks from one multishot `recv` (see
/// [`TcpStream::recv_multishot`](super::TcpStream::recv_multishot)).
///
/// No buffer is pinned while the connection is idle: the kernel takes one from the reactor's
/// provided-buffer ring only when data arrives, and the [`RecvChunk`] gives it back when
/// dropped. Re-arms itself when the kernel ends the multishot or runs out of buffers.
pub struct RecvStream {
    fd: SharedFd,
    driver: Rc<Driver>,
    op: Option<MultiOp>,
    /// The current multishot was asked to stop; its last completions are still delivered.
    stopping: bool,
}

impl RecvStream {
    pub(crate) fn new(fd: SharedFd) -> io::Result<RecvStream> {
        let driver = Driver::current();
        driver.buf_ring()?;
        Ok(RecvStream {
            fd,
            driver,
            op: None,
            stopping: false,
        })
    }

    /// The next chunk; an empty chunk means the peer closed its side.
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<RecvChunk>> {
        loop {
            let fd = self.fd.raw();
            let op = self.op.get_or_insert_with(|| {
                let entry = opcode::RecvMulti::new(types::Fd(fd), BUF_GROUP).build();
                // SAFETY: a buffer-select recv points to no memory of ours; buffers come from
                // the registered ring, which outlives every op of the reactor.
                unsafe { MultiOp::submit(entry, recycle_discarded) }
            });
            let completion = match op.poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => {
                    // The kernel ended the multishot: arm a new one.
                    self.op = None;
                    self.stopping = false;
                    continue;
                }
                Poll::Ready(Some(completion)) => completion,
            };
            if completion.result == -libc::ENOBUFS {
                // Every ring buffer is out in chunks; they come back as chunks drop. Let them.
                self.op = None;
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            if completion.result == -libc::ECANCELED {
                // The end of a multishot stopped by `pause`; the next poll re-arms.
                continue;
            }
            if completion.result < 0 {
                return Poll::Ready(Err(io::Error::from_raw_os_error(-completion.result)));
            }
            let len = completion.result as usize;
            let bid = cqueue::buffer_select(completion.flags);
            return Poll::Ready(Ok(RecvChunk {
                driver: self.driver.clone(),
                bid,
                len,
            }));
        }
    }

    /// Stops receiving without losing data: the in-flight multishot is cancelled, chunks the
    /// kernel already received are still returned by the next polls, and the poll after them
    /// arms a new multishot. Call it when the consumer cannot keep up (backpressure).
    pub fn pause(&mut self) {
        if let Some(op) = &self.op {
            if !self.stopping {
                self.stopping = true;
                op.cancel();
            }
        }
    }

    /// Waits for the next chunk; an empty chunk means the peer closed its side.
    pub async fn recv(&mut self) -> io::Result<RecvChunk> {
        std::future::poll_fn(|cx| self.poll_recv(cx)).await
    }
}

impl fmt::Debug for RecvStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecvStream")
            .field("fd", &self.fd.raw())
            .field("armed", &self.op.is_some())
            .finish()
    }
}

/// A received chunk, borrowed from the reactor's buffer ring until dropped.
pub struct RecvChunk {
    driver: Rc<Driver>,
    bid: Option<u16>,
    len: usize,
}

impl Deref for RecvChunk {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match (self.bid, self.driver.buf_ring()) {
            (Some(bid), Ok(ring)) => ring.bytes(bid, self.len),
            _ => &[],
        }
    }
}

impl Drop for RecvChunk {
    fn drop(&mut self) {
        if let Some(bid) = self.bid {
            self.driver.recycle_buffer(bid);
        }
    }
}

impl fmt::Debug for RecvChunk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecvChunk").field("len", &self.len).finish()
    }
}

/// Returns the buffer of a completion nobody will take.
fn recycle_discarded(completion: Completion) {
    if let Some(bid) = cqueue::buffer_select(completion.flags) {
        crate::context::with(|reactor| reactor.driver.recycle_buffer(bid));
    }
}
