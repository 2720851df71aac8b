//! Multishot receive into the reactor's receive buffers.

use std::fmt;
use std::io;
use std::ops::Deref;
use std::rc::Rc;
use std::task::{Context, Poll};

use crate::driver::{IoDriver, MultiOp, SharedFd};
use crate::ops::RecvMulti;

/// Takes received bytes the moment their completion is reaped, on the reactor thread and
/// before any task runs (see [`RecvStream::set_consumer`]).
///
/// It is how a receive pump feeds a pipe without a task poll per chunk: the consumer copies
/// the bytes where they belong and wakes whoever reads them. Whatever it refuses comes out of
/// [`RecvStream::poll_recv`] as usual.
pub trait RecvConsumer {
    /// Takes `bytes` (copy them out: the buffer goes back to the kernel after this call) and
    /// returns `true`; or returns `false` to leave them, and everything after them, to
    /// [`RecvStream::poll_recv`] (which is woken).
    fn offer(&self, bytes: &[u8]) -> bool;
}

/// A stream of received chunks from one multishot `recv` (see
/// [`TcpStream::recv_multishot`](super::TcpStream::recv_multishot)).
///
/// No buffer is pinned while the connection is idle: a buffer is taken from the reactor's
/// receive buffers (under io_uring, by the kernel from the provided-buffer ring) only when
/// data arrives, and the [`RecvChunk`] gives it back when dropped. Re-arms itself when the kernel ends the multishot; when the ring ran dry
/// (`ENOBUFS`) it waits for a buffer to come back instead of retrying in a loop.
pub struct RecvStream {
    fd: SharedFd,
    driver: Rc<IoDriver>,
    armed: Armed,
    /// The reactor's count of recycled buffers when the current multishot was armed: if it
    /// moved by the time `ENOBUFS` is seen, a buffer came back since, so re-arm at once.
    recycled_at_arm: u64,
    /// Offered each chunk as it is reaped, when set.
    consumer: Option<Rc<dyn RecvConsumer>>,
}

/// The multishot in flight, if any. A stop request lives and dies with its op, so a later
/// multishot can always be paused again.
enum Armed {
    Idle,
    Receiving(MultiOp<RecvMulti>),
    /// Asked to stop (backpressure); its last completions are still delivered.
    Stopping(MultiOp<RecvMulti>),
}

impl RecvStream {
    pub(crate) fn new(fd: SharedFd) -> io::Result<RecvStream> {
        let driver = IoDriver::current();
        driver.prepare_buffers()?;
        Ok(RecvStream {
            fd,
            driver,
            armed: Armed::Idle,
            recycled_at_arm: 0,
            consumer: None,
        })
    }

    /// The next chunk; an empty chunk means the peer closed its side.
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<RecvChunk>> {
        loop {
            if let Armed::Idle = self.armed {
                self.recycled_at_arm = self.driver.buffers_recycled();
                let op = MultiOp::new(RecvMulti::new(&self.fd));
                op.set_consumer(self.consumer.clone());
                self.armed = Armed::Receiving(op);
            }
            let (Armed::Receiving(op) | Armed::Stopping(op)) = &mut self.armed else {
                unreachable!("armed above")
            };
            let completion = match op.poll_next(cx) {
                Poll::Pending => {
                    if let (Some(consumer), Armed::Receiving(_)) = (&self.consumer, &self.armed) {
                        // Readiness mode: the driver receives for the consumer while this
                        // waits for an edge (io_uring offers from the multishot instead).
                        self.driver.attach_consumer(&self.fd, consumer);
                    }
                    return Poll::Pending;
                }
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
            let bid = completion.buffer_id();
            return Poll::Ready(Ok(RecvChunk {
                driver: self.driver.clone(),
                bid,
                len,
            }));
        }
    }

    /// Offers every received chunk to `consumer` the moment its completion is reaped, before
    /// it would be queued for [`poll_recv`](Self::poll_recv). Only chunks with data are
    /// offered, and only while nothing is queued (so order is kept); the end of the stream,
    /// errors and refused chunks come out of `poll_recv`. Under the epoll driver the driver
    /// receives for the consumer when an edge says the socket is readable, while the stream
    /// waits in `poll_recv` (after its poll returned `Pending`), with the same rules.
    ///
    /// Keep polling the stream (the consumer does not re-arm it, and refused chunks wait
    /// there).
    pub fn set_consumer(&mut self, consumer: Rc<dyn RecvConsumer>) {
        if let Armed::Receiving(op) | Armed::Stopping(op) = &self.armed {
            op.set_consumer(Some(consumer.clone()));
        }
        self.consumer = Some(consumer);
    }

    /// Stops receiving without losing data: the in-flight multishot is cancelled, chunks the
    /// kernel already received are still returned by the next polls, and the poll after them
    /// arms a new multishot. Call it when the consumer cannot keep up (backpressure).
    pub fn pause(&mut self) {
        if let Armed::Receiving(_) = self.armed {
            let Armed::Receiving(mut op) = std::mem::replace(&mut self.armed, Armed::Idle) else {
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
    driver: Rc<IoDriver>,
    bid: Option<u16>,
    len: usize,
}

impl Deref for RecvChunk {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self.bid {
            Some(bid) => self.driver.buffer_bytes(bid, self.len),
            None => &[],
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
