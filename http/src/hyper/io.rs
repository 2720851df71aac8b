//! `PipeIo`: an application-side `DuplexPipe` as `hyper::rt::Read + Write`.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use hyper::rt::{Read, ReadBufCursor, Write};
use ringhop_pipes::DuplexPipe;

/// A connection's pipes, as hyper's I/O traits.
///
/// Reads copy from the input pipe's segments into hyper's buffer (consuming what was
/// copied); writes copy into the output pipe, and `poll_flush` publishes them to the send
/// pump, waiting while the pipe is over its pause threshold (backpressure). A write also
/// waits, once half the threshold is unflushed and the pipe is full, so a peer that stops
/// reading cannot make hyper grow the pipe without bound.
///
/// After an HTTP/1.1 upgrade, `hyper::upgrade::Upgraded` wraps it (still on the connection's
/// reactor): read and write it as hyper I/O, or as tokio I/O through hyper-util's `TokioIo`.
#[derive(Debug)]
pub struct PipeIo {
    pipe: DuplexPipe,
    /// The upgrade state shared with the server (see [`UpgradeState`]), for the counters.
    upgraded: Option<Arc<AtomicU8>>,
    /// The last flush waited (the output pipe is full): writes wait for it too. A flush
    /// publishes what was written even when it waits, so the count of unflushed bytes
    /// alone would let every later wake (a request body's bytes arriving) write another
    /// batch past the pipe's limit.
    flush_waits: bool,
    /// Bytes the last read copied into hyper's buffer: consumed by the next read, under the
    /// same pipe lock as its look for more (one lock per read instead of two).
    unconsumed: usize,
}

impl PipeIo {
    /// Wraps the application end of a connection.
    pub fn new(pipe: DuplexPipe) -> PipeIo {
        PipeIo {
            pipe,
            upgraded: None,
            flush_waits: false,
            unconsumed: 0,
        }
    }

    /// The state through which the server marks this connection upgraded (once hyper handed
    /// it over after a `101`), so that dropping the I/O ends the upgraded connection.
    pub(crate) fn watch_upgrade(&mut self) -> UpgradeState {
        UpgradeState(self.upgraded.get_or_insert_with(Default::default).clone())
    }

    fn end_upgrade(&mut self) {
        if let Some(state) = self.upgraded.take() {
            if state.swap(DROPPED, Ordering::AcqRel) == UPGRADED {
                crate::upgrade::closed();
            }
        }
    }

    /// `true` when the first bytes are the HTTP/2 connection preface; reads (without
    /// consuming) until that is decided.
    pub async fn starts_with_h2_preface(&mut self) -> io::Result<bool> {
        const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
        // What earlier reads examined (a prefix of the preface that arrived alone, such as
        // the `P` of a `POST` sent in two segments): an advance may not move back before it,
        // and stopping there, short of the bytes that arrived since, makes the next read
        // return them at once.
        let mut examined = 0;
        loop {
            let result = self.pipe.input.read().await?;
            let len = result.len();
            let mut head = [0u8; PREFACE.len()];
            let n = result.copy_to(0, &mut head);
            let completed = result.is_completed();
            let decided = if head[..n] != PREFACE[..n] {
                Some(false)
            } else if n == PREFACE.len() {
                Some(true)
            } else if completed {
                Some(false)
            } else {
                None
            };
            match decided {
                Some(h2) => {
                    // Nothing consumed: hyper's first read returns all of it.
                    self.pipe.input.advance_to(0, examined)?;
                    return Ok(h2);
                }
                // A prefix of the preface so far: wait for more bytes.
                None => {
                    self.pipe.input.advance_to(0, len)?;
                    examined = len;
                }
            }
        }
    }
}

impl Read for PipeIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let input = &mut this.pipe.input;
        let polled = match this.unconsumed {
            // Nothing to consume: a plain read (which takes a unit of the task's budget).
            0 => std::future::Future::poll(Pin::new(&mut input.read()), cx),
            unconsumed => {
                // The same budget as a read's, taken before anything changes.
                std::task::ready!(ringhop_runtime::coop::poll_proceed(cx));
                this.unconsumed = 0;
                input.advance_and_poll_read(unconsumed, unconsumed, cx)?
            }
        };
        let result = match polled {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Err(err)) => return Poll::Ready(Err(err)),
            Poll::Ready(Ok(result)) => result,
        };
        let mut copied = 0;
        for chunk in result.chunks() {
            let n = chunk.len().min(buf.remaining());
            buf.put_slice(&chunk[..n]);
            copied += n;
            if buf.remaining() == 0 {
                break;
            }
        }
        // Nothing copied means end of stream (the writer completed): hyper reads EOF.
        this.unconsumed = copied;
        Poll::Ready(Ok(()))
    }
}

impl PipeIo {
    /// Backpressure for writes: once half the pause threshold is written but not flushed,
    /// commit it (the send pump only sees committed bytes) and wait while the pipe is over
    /// its pause threshold. The pipe then never holds much more than its threshold plus one
    /// write, however fast hyper produces.
    fn poll_write_ready(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let output = &mut self.pipe.output;
        if output.is_completed() {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        let pause = output.pause_threshold();
        if !self.flush_waits && (pause == 0 || output.unflushed_len() < pause / 2) {
            return Poll::Ready(Ok(()));
        }
        self.poll_flush_output(cx)
    }

    /// Publishes what was written and waits while the pipe is full; a reader that went away
    /// is a broken pipe.
    fn poll_flush_output(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = match self.pipe.output.poll_flush(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(err)) => Poll::Ready(Err(err)),
            Poll::Ready(Ok(result)) if result.completed => {
                Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()))
            }
            Poll::Ready(Ok(_)) => Poll::Ready(Ok(())),
        };
        self.flush_waits = polled.is_pending();
        polled
    }
}

impl Write for PipeIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        std::task::ready!(this.poll_write_ready(cx))?;
        this.pipe.output.write(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        std::task::ready!(this.poll_write_ready(cx))?;
        let output = &mut this.pipe.output;
        let mut total = 0;
        for buf in bufs {
            output.write(buf);
            total += buf.len();
        }
        Poll::Ready(Ok(total))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.pipe.output.is_completed() {
            return Poll::Ready(Ok(()));
        }
        this.poll_flush_output(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.as_mut().poll_flush(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(_) => {
                self.get_mut().pipe.output.complete(None);
                Poll::Ready(Ok(()))
            }
        }
    }
}

const SERVING: u8 = 0;
const UPGRADED: u8 = 1;
const DROPPED: u8 = 2;

/// A connection's upgrade state: serving HTTP, upgraded (counted open), or its I/O dropped.
/// The I/O may be dropped on another thread (an upgraded connection handed to tokio).
pub(crate) struct UpgradeState(Arc<AtomicU8>);

impl UpgradeState {
    /// After hyper finished a connection that answered `101`: counts the upgrade, and counts
    /// it open unless its I/O is already gone.
    pub(crate) fn upgraded(&self) {
        crate::upgrade::counted();
        if self
            .0
            .compare_exchange(SERVING, UPGRADED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            crate::upgrade::opened_open();
        }
    }
}

impl Drop for PipeIo {
    fn drop(&mut self) {
        // What was written goes out, as a socket's writes would, even without a flush (an
        // upgraded protocol's last frame, such as a WebSocket's Close reply): published
        // before the pipe's writer ends, which drops unflushed bytes.
        let output = &mut self.pipe.output;
        if output.unflushed_len() > 0 && !output.is_completed() {
            let _ = output.poll_flush(&mut Context::from_waker(std::task::Waker::noop()));
        }
        self.end_upgrade();
    }
}

#[cfg(test)]
mod tests {
    use std::pin::Pin;
    use std::task::{Context, Poll, Waker};

    use hyper::rt::{Read, ReadBuf, Write};
    use ringhop_pipes::{DuplexPipe, PipeOptions, PipeScheduler};

    use super::PipeIo;

    fn inline_pair() -> (DuplexPipe, DuplexPipe) {
        let options = || {
            PipeOptions::default()
                .reader_scheduler(PipeScheduler::Inline)
                .writer_scheduler(PipeScheduler::Inline)
        };
        DuplexPipe::pair(options(), options()).unwrap()
    }

    /// One `poll_read` of `io` into a fresh buffer: what it returned, or `None` if pending.
    fn read(io: &mut PipeIo, cx: &mut Context<'_>) -> Option<Vec<u8>> {
        let mut storage = [std::mem::MaybeUninit::<u8>::uninit(); 64];
        let mut buf = ReadBuf::uninit(&mut storage);
        match Pin::new(io).poll_read(cx, buf.unfilled()) {
            Poll::Ready(Ok(())) => Some(buf.filled().to_vec()),
            Poll::Ready(Err(err)) => panic!("{err}"),
            Poll::Pending => None,
        }
    }

    #[test]
    fn a_read_consumes_what_the_last_one_copied_under_its_own_lock() {
        let (mut transport, application) = inline_pair();
        let mut io = PipeIo::new(application);
        let mut cx = Context::from_waker(Waker::noop());
        let mut send = |bytes: &[u8]| {
            transport.output.write(bytes);
            let _ = transport
                .output
                .poll_flush(&mut Context::from_waker(Waker::noop()));
        };
        send(b"first");
        let locks = ringhop_pipes::lock_acquisitions();
        assert_eq!(read(&mut io, &mut cx).as_deref(), Some(&b"first"[..]));
        // Nothing new: pending, and "first" is not returned again.
        assert_eq!(read(&mut io, &mut cx), None);
        // One lock per read: the second read's advance and look share it.
        assert_eq!(ringhop_pipes::lock_acquisitions() - locks, 2);
        send(b"second");
        assert_eq!(read(&mut io, &mut cx).as_deref(), Some(&b"second"[..]));
        // What was copied out is consumed: the pipe holds nothing once the next read asks.
        assert_eq!(read(&mut io, &mut cx), None);
        transport.output.complete(None);
        assert_eq!(
            read(&mut io, &mut cx).as_deref(),
            Some(&b""[..]),
            "end of stream"
        );
    }

    #[test]
    fn writes_wait_once_the_pipe_is_over_its_pause_threshold() {
        // Nobody reads the transport end: the peer stopped reading.
        let (_transport, application) = inline_pair();
        let mut io = PipeIo::new(application);
        let mut cx = Context::from_waker(Waker::noop());
        let chunk = [b'x'; 16 * 1024];
        let mut written = 0;
        while written < 64 << 20 {
            match Pin::new(&mut io).poll_write(&mut cx, &chunk) {
                Poll::Ready(Ok(n)) => written += n,
                Poll::Ready(Err(err)) => panic!("{err}"),
                Poll::Pending => break,
            }
        }
        // Pause 64 KiB: writes stop once 32 KiB unflushed meet a full pipe.
        assert!(
            written <= 128 * 1024,
            "{written} bytes accepted into a pipe nobody reads"
        );
    }
}
