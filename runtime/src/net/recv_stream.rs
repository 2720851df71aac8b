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
/// dropped. Re-arms itself when the kernel ends the multishot; when the ring ran dry
/// (`ENOBUFS`) it waits for a buffer to come back instead of retrying in a loop.
pub struct RecvStream {
    fd: SharedFd,
    driver: Rc<Driver>,
    armed: Armed,
    /// The reactor's count of recycled buffers when the current multishot was armed: if it
    /// moved by the time `ENOBUFS` is seen, a buffer came back since, so re-arm at once.
    recycled_at_arm: u64,
}

/// The multishot in flight, if any. A stop request lives and dies with its op, so a later
/// multishot can always be paused again.
enum Armed {
    Idle,
    Receiving(MultiOp),
    /// Asked to stop (backpressure); its last completions are still delivered.
    Stopping(MultiOp),
}

impl RecvStream {
    pub(crate) fn new(fd: SharedFd) -> io::Result<RecvStream> {
        let driver = Driver::current();
        driver.buf_ring()?;
        Ok(RecvStream {
            fd,
            driver,
            armed: Armed::Idle,
            recycled_at_arm: 0,
        })
    }

    /// The next chunk; an empty chunk means the peer closed its side.
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<RecvChunk>> {
        loop {
            if let Armed::Idle = self.armed {
                let entry = opcode::RecvMulti::new(types::Fd(self.fd.raw()), BUF_GROUP).build();
                self.recycled_at_arm = self.driver.buffers_recycled();
                // SAFETY: a buffer-select recv points to no memory of ours; buffers come from
                // the registered ring, which outlives every op of the reactor.
                self.armed = Armed::Receiving(unsafe { MultiOp::submit(entry, recycle_discarded) });
            }
            let (Armed::Receiving(op) | Armed::Stopping(op)) = &mut self.armed else {
                unreachable!("armed above")
            };
            let completion = match op.poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => {
                    // The kernel ended the multishot (or the stop took effect): arm anew.
                    self.armed = Armed::Idle;
                    continue;
                }
                Poll::Ready(Some(completion)) => completion,
            };
            if completion.result == -libc::ENOBUFS {
                // Every ring buffer is out (in chunks, or in completions not reaped yet).
                // They come back as chunks drop: re-arm then, not in a loop meanwhile.
                self.armed = Armed::Idle;
                if self.driver.buffers_recycled() != self.recycled_at_arm {
                    continue;
                }
                self.driver.wait_for_buffer(cx.waker());
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
        if let Armed::Receiving(_) = self.armed {
            let Armed::Receiving(op) = std::mem::replace(&mut self.armed, Armed::Idle) else {
                unreachable!("matched above")
            };
            op.cancel();
            self.armed = Armed::Stopping(op);
        }
    }

    /// Whether a multishot is in flight and not asked to stop (for tests of `pause`).
    pub fn is_receiving(&self) -> bool {
        matches!(self.armed, Armed::Receiving(_))
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
            .field("receiving", &self.is_receiving())
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
