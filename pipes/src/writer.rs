//! `PipeWriter`: fills segments in place, publishes them with `flush`, honours backpressure.

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use crate::pipe::{Inner, Shared};
use crate::segment::{Block, Segment, SegmentPool};
use crate::state::FlushReady;

/// The outcome of a [`PipeWriter::flush`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlushResult {
    /// The reader completed: nothing written from now on will be read.
    pub completed: bool,
    /// The flush was cancelled by [`PipeWriter::cancel_pending_flush`].
    pub canceled: bool,
}

/// The writable tail segment, cached so repeated `buffer_mut` calls take no lock.
struct Tail {
    block: Arc<Block>,
    written: usize,
}

/// The writing end of a pipe.
pub struct PipeWriter {
    shared: Arc<Shared>,
    tail: Option<Tail>,
    /// Bytes written since the last commit.
    unflushed: usize,
    completed: bool,
}

impl PipeWriter {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        PipeWriter {
            shared,
            tail: None,
            unflushed: 0,
            completed: false,
        }
    }

    /// A writable buffer of at least `min_len` bytes (at least 1) at the end of the pipe.
    /// Write into it, then [`advance`](Self::advance) by what you wrote; nothing is visible
    /// to the reader before [`flush`](Self::flush).
    pub fn buffer_mut(&mut self, min_len: usize) -> &mut [u8] {
        let min_len = min_len.max(1);
        let fits = matches!(&self.tail, Some(t) if t.block.capacity() - t.written >= min_len);
        if !fits {
            self.acquire_tail(min_len);
        }
        let tail = self.tail.as_mut().expect("acquire_tail set the tail");
        let free = tail.block.capacity() - tail.written;
        // SAFETY: bytes past `written` in the tail block belong to the writer alone (the reader
        // only reads committed bytes, which end at or before `written`), the block lives as
        // long as `tail` holds its Arc, and `&mut self` makes this the only live slice.
        unsafe { std::slice::from_raw_parts_mut(tail.block.as_ptr().add(tail.written), free) }
    }

    /// Finds or makes a tail segment with `min_len` free bytes, under the lock.
    fn acquire_tail(&mut self, min_len: usize) {
        if self.completed {
            // Writes after `complete` go to a block outside the pipe, dropped at the next
            // flush (which fails): the reader, told no bytes follow, never sees them.
            let block = self
                .shared
                .pool
                .take(min_len.max(self.shared.minimum_segment_size));
            self.tail = Some(Tail { block, written: 0 });
            return;
        }
        // Fields, not `self`, under the lock: cloning the `Arc` to free `self` costs two
        // atomic operations per call.
        let mut inner = self.shared.lock();
        // Record how far the old tail got: its bytes are committed at the next flush.
        if let Some(tail) = self.tail.take() {
            if let Some(last) = inner.segments.back_mut() {
                last.filled = tail.written;
            }
        }
        // Reuse the pipe's last segment when it has room (the common case after a flush).
        if let Some(last) = inner.segments.back() {
            if last.block.capacity() - last.filled >= min_len {
                self.tail = Some(Tail {
                    block: last.block.clone(),
                    written: last.filled,
                });
                inner.writer_active = true;
                return;
            }
        }
        let base = inner
            .segments
            .back()
            .map_or(inner.state.committed, Segment::end);
        let block = self
            .shared
            .pool
            .take(min_len.max(self.shared.minimum_segment_size));
        inner.segments.push_back(Segment {
            block: block.clone(),
            base,
            filled: 0,
        });
        inner.writer_active = true;
        self.tail = Some(Tail { block, written: 0 });
    }

    /// Marks `n` bytes of the last [`buffer_mut`](Self::buffer_mut) as written. Fails when
    /// `n` exceeds what was handed out.
    pub fn advance(&mut self, n: usize) -> io::Result<()> {
        let available = self
            .tail
            .as_ref()
            .map_or(0, |t| t.block.capacity() - t.written);
        if n > available {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("advance({n}) exceeds the {available} bytes handed out by buffer_mut"),
            ));
        }
        if let Some(tail) = self.tail.as_mut() {
            tail.written += n;
            self.unflushed += n;
        }
        Ok(())
    }

    /// Makes everything written so far visible to the reader, then waits while the pipe is
    /// at or above its pause threshold (until it drops below the resume threshold), or until
    /// the reader completes (`completed`) or the flush is cancelled (`canceled`). Returns the
    /// reader's completion error, if it gave one. Fails with `BrokenPipe` after
    /// [`complete`](Self::complete).
    pub fn flush(&mut self) -> Flush<'_> {
        Flush {
            writer: self,
            committed: false,
        }
    }

    /// Poll form of [`flush`](Self::flush): publishes what was written, then reports whether
    /// the flush may complete. For adapters that cannot hold a `Flush` future (e.g.
    /// `poll_flush` of an I/O trait); each call publishes anew.
    pub fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<FlushResult>> {
        self.commit_and_poll_flush(cx)
    }

    /// Commits and polls the flush in one critical section.
    fn commit_and_poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<FlushResult>> {
        self.append_commit_and_poll_flush(&[], cx)
    }

    /// Appends `bytes` after the committed ones (without a tail only), commits and polls the
    /// flush in one critical section.
    fn append_commit_and_poll_flush(
        &mut self,
        bytes: &[u8],
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<FlushResult>> {
        if self.completed {
            return Poll::Ready(Err(self.discard_after_complete()));
        }
        let (waker, ready, reader_sends) = {
            let mut inner = self.shared.lock();
            append_locked(&self.shared, &mut inner, bytes);
            let waker = commit_locked(
                &mut self.tail,
                &mut self.unflushed,
                &self.shared.pool,
                &mut inner,
            );
            (waker, inner.state.poll_flush(cx), inner.reader_sends)
        };
        if let Some(waker) = waker {
            self.shared.wake_reader(waker, reader_sends);
        }
        flush_outcome(ready)
    }

    /// [`write`](Self::write), then [`poll_flush`](Self::poll_flush), under one lock: a
    /// producer that hands over whole chunks (a receive pump) pays one lock per chunk instead
    /// of two, and copies straight into the pipe's last segment without holding a tail.
    ///
    /// ```
    /// use std::task::{Context, Poll, Waker};
    /// let (mut reader, mut writer) = ringhop_pipes::Pipe::new(Default::default())?;
    /// let flushed = writer.write_and_poll_flush(b"chunk", &mut Context::from_waker(Waker::noop()));
    /// assert!(matches!(flushed, Poll::Ready(Ok(_))));
    /// assert_eq!(reader.try_read().unwrap()?.to_vec(), b"chunk");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn write_and_poll_flush(
        &mut self,
        bytes: &[u8],
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<FlushResult>> {
        if self.completed {
            return Poll::Ready(Err(self.discard_after_complete()));
        }
        if self.tail.is_some() {
            // Earlier writes wait in a tail: the general path.
            self.write(bytes);
            return self.commit_and_poll_flush(cx);
        }
        self.append_commit_and_poll_flush(bytes, cx)
    }

    /// Copies `bytes` into the pipe and flushes.
    pub async fn write_all(&mut self, bytes: &[u8]) -> io::Result<FlushResult> {
        self.write(bytes);
        self.flush().await
    }

    /// Copies `bytes` into the pipe without flushing (batch several, then flush once).
    #[inline]
    pub fn write(&mut self, bytes: &[u8]) {
        // Fast path, inlined into callers: the bytes fit in the tail segment already held.
        // An HTTP response is a dozen small writes; taking this path for each is what keeps
        // them cheap.
        if let Some(tail) = self.tail.as_mut() {
            if tail.block.capacity() - tail.written >= bytes.len() {
                // SAFETY: as in `buffer_mut`: bytes past `written` in the tail block belong to
                // the writer alone, the block lives while `tail` holds its Arc, the source is
                // a separate borrow (no overlap), and the length was just checked to fit.
                unsafe {
                    std::ptr::copy_nonoverlapping(
                        bytes.as_ptr(),
                        tail.block.as_ptr().add(tail.written),
                        bytes.len(),
                    );
                }
                tail.written += bytes.len();
                self.unflushed += bytes.len();
                return;
            }
        }
        self.write_spilling(bytes);
    }

    /// The rest of [`write`](Self::write): a new tail segment, or several.
    fn write_spilling(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let buf = self.buffer_mut(1);
            let n = buf.len().min(bytes.len());
            buf[..n].copy_from_slice(&bytes[..n]);
            if let Some(tail) = self.tail.as_mut() {
                tail.written += n;
            }
            self.unflushed += n;
            bytes = &bytes[n..];
        }
    }

    /// A flush after [`complete`](Self::complete): what was written since is dropped, and
    /// the flush fails (the pipe's writing side is closed).
    fn discard_after_complete(&mut self) -> io::Error {
        self.tail = None;
        self.unflushed = 0;
        io::Error::new(
            io::ErrorKind::BrokenPipe,
            "PipeWriter: flush after complete (the writing side is closed; bytes written since \
             are dropped)",
        )
    }

    /// Makes a pending (or the next) flush return with `canceled` set.
    pub fn cancel_pending_flush(&self) {
        let waker = self.shared.lock().state.cancel_flush();
        if let Some(waker) = waker {
            self.shared.wake_writer(waker);
        }
    }

    /// Ends the writing side. Bytes not flushed are discarded; the reader sees completion
    /// (with `error`, if given) after the flushed bytes. Bytes written after it never reach
    /// the reader: the next flush drops them and fails with `BrokenPipe`.
    pub fn complete(&mut self, error: Option<io::Error>) {
        if self.completed {
            return;
        }
        self.completed = true;
        self.unflushed = 0;
        let (waker, reader_sends) = {
            let mut inner = self.shared.lock();
            // Unflushed bytes in the tail are dropped: the segment keeps only committed ones.
            if self.tail.take().is_some() {
                let committed = inner.state.committed;
                while matches!(inner.segments.back(), Some(last) if last.base >= committed && last.end() > committed)
                {
                    if let Some(segment) = inner.segments.pop_back() {
                        self.shared.pool.give(segment.block);
                    }
                }
                if let Some(last) = inner.segments.back_mut() {
                    last.filled = last
                        .filled
                        .min(committed.saturating_sub(last.base) as usize);
                }
            }
            inner.writer_active = false;
            let waker = inner.state.complete_writer(error);
            if inner.state.both_completed() {
                let pool = self.shared.pool.clone();
                inner.release_all_unsynchronized(&pool);
            }
            (waker, inner.reader_sends)
        };
        if let Some(waker) = waker {
            self.shared.wake_reader(waker, reader_sends);
        }
    }

    /// Bytes written since the last flush (not visible to the reader yet). A writer that
    /// batches many messages before one flush checks it against
    /// [`pause_threshold`](Self::pause_threshold), so a batch never outgrows backpressure.
    pub fn unflushed_len(&self) -> usize {
        self.unflushed
    }

    /// The pipe's pause threshold (0: flushes never wait).
    pub fn pause_threshold(&self) -> usize {
        self.shared.pause
    }

    /// Waits until the reader completes; for a writer that has nothing to write yet but must
    /// notice that nobody will read any more (a receive pump parked on an idle socket).
    pub fn poll_reader_completed(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        self.shared.lock().state.poll_reader_completed(cx)
    }

    /// `true` once [`complete`](Self::complete) was called.
    pub fn is_completed(&self) -> bool {
        self.completed
    }
}

impl Drop for PipeWriter {
    fn drop(&mut self) {
        self.complete(None);
    }
}

impl fmt::Debug for PipeWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PipeWriter")
            .field("completed", &self.completed)
            .finish()
    }
}

/// The future of [`PipeWriter::flush`].
#[must_use = "futures do nothing unless awaited"]
pub struct Flush<'a> {
    writer: &'a mut PipeWriter,
    committed: bool,
}

impl Future for Flush<'_> {
    type Output = io::Result<FlushResult>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if !this.committed {
            this.committed = true;
            return this.writer.commit_and_poll_flush(cx);
        }
        flush_outcome(this.writer.shared.lock().state.poll_flush(cx))
    }
}

/// Copies `bytes` after the last segment's filled bytes (into new segments as needed),
/// under the pipe's lock, for a writer without a tail.
fn append_locked(shared: &Shared, inner: &mut Inner, mut bytes: &[u8]) {
    while !bytes.is_empty() {
        let full = inner
            .segments
            .back()
            .is_none_or(|last| last.filled == last.block.capacity());
        if full {
            let base = inner
                .segments
                .back()
                .map_or(inner.state.committed, Segment::end);
            let block = shared.pool.take(shared.minimum_segment_size);
            inner.segments.push_back(Segment {
                block,
                base,
                filled: 0,
            });
        }
        let Some(last) = inner.segments.back_mut() else {
            unreachable!("a segment with room was just ensured");
        };
        let n = (last.block.capacity() - last.filled).min(bytes.len());
        // SAFETY: without a tail, every byte the last segment filled is committed and the
        // bytes past them belong to the writer alone: the reader (and a send in flight) only
        // touch committed bytes, and the caller holds the lock. The block lives while the
        // segment list holds its Arc; the source is a separate borrow, and `n` fits.
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), last.block.as_ptr().add(last.filled), n);
        }
        last.filled += n;
        bytes = &bytes[n..];
    }
}

/// Publishes the written bytes, under the pipe's lock; returns the reader's waker, for
/// the caller to wake once the lock is released.
fn commit_locked(
    tail: &mut Option<Tail>,
    unflushed: &mut usize,
    pool: &SegmentPool,
    inner: &mut Inner,
) -> Option<Waker> {
    let committed = match (&*tail, inner.segments.back_mut()) {
        (Some(tail), Some(last)) => {
            last.filled = tail.written;
            last.end()
        }
        (_, Some(last)) => last.end(),
        (_, None) => inner.state.committed,
    };
    *tail = None;
    *unflushed = 0;
    inner.writer_active = false;
    let waker = inner.state.commit(committed);
    if inner.state.reader_completed {
        // Nobody will read: keep no memory for it.
        inner.state.consumed = inner.state.committed;
        inner.state.examined = inner.state.committed;
        inner.release_all_unsynchronized(pool);
    }
    waker
}

fn flush_outcome(ready: Poll<FlushReady>) -> Poll<io::Result<FlushResult>> {
    match ready {
        Poll::Pending => Poll::Pending,
        Poll::Ready(FlushReady::Error(err)) => Poll::Ready(Err(err)),
        Poll::Ready(FlushReady::Done {
            completed,
            canceled,
        }) => Poll::Ready(Ok(FlushResult {
            completed,
            canceled,
        })),
    }
}
