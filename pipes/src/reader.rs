//! `PipeReader`: reads everything unconsumed as a segmented view; `advance_to` releases and
//! marks what was looked at.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use ringhop_runtime::IoBuf;

use crate::pipe::{Inner, Shared};
use crate::segment::{Block, SegmentPool};
use crate::state::ReadReady;

/// The reading end of a pipe.
pub struct PipeReader {
    shared: Arc<Shared>,
    /// The unconsumed chunks as of the last read, kept up to date incrementally: a read
    /// drops what was consumed from the front and appends what was committed since, so its
    /// cost does not grow with the bytes buffered (a read allocates nothing once warm).
    chunks: VecDeque<Chunk>,
    /// The last read and what the last advance left, for `advance_to`.
    cursor: Cursor,
    completed: bool,
}

/// A run of committed bytes inside one block.
///
/// The block is borrowed, not owned: the pipe's segment list holds its `Arc`, and the
/// segments a read saw are released only by `advance_to` or `complete`, which need the
/// `&mut PipeReader` that a `ReadResult` borrows (the writer releases segments only after
/// the reader completed). Cloning an `Arc` per segment per read made a read O(segments) in
/// atomic operations: with a few hundred KiB of pipelined requests buffered, that was most of
/// the cost of each request.
struct Chunk {
    block: *const Block,
    /// Pipe position of the first byte.
    start: u64,
    offset: usize,
    len: usize,
}

// SAFETY: a Chunk is a pointer into a block the pipe keeps alive (see above) plus offsets;
// moving the reader that holds it to another thread changes none of that.
unsafe impl Send for Chunk {}
// SAFETY: shared access only reads committed bytes, which nobody writes any more.
unsafe impl Sync for Chunk {}

impl Chunk {
    /// Pipe position just past the last byte.
    fn end(&self) -> u64 {
        self.start + self.len as u64
    }

    fn block(&self) -> &Block {
        // SAFETY: the pipe's segment list keeps the block alive while a read result that
        // can reach this chunk exists (see the type's doc).
        unsafe { &*self.block }
    }

    fn bytes(&self) -> &[u8] {
        // SAFETY: committed bytes inside a live block: the writer never writes them again,
        // and the pipe releases them only in `advance_to` / `complete`, which need the
        // `&mut PipeReader` a `ReadResult` borrows.
        unsafe { std::slice::from_raw_parts(self.block().as_ptr().add(self.offset), self.len) }
    }

    /// An owning handle on the block, for a slice that outlives the read.
    fn owned_block(&self) -> Arc<Block> {
        // SAFETY: `self.block` came from `Arc::as_ptr` of an Arc the segment list still
        // holds (see the type's doc), so the count is at least 1 and we add ours.
        unsafe {
            Arc::increment_strong_count(self.block);
            Arc::from_raw(self.block)
        }
    }
}

impl PipeReader {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        PipeReader {
            shared,
            chunks: VecDeque::new(),
            cursor: Cursor::default(),
            completed: false,
        }
    }

    /// Waits for unexamined bytes (or completion, or cancellation) and returns all
    /// unconsumed bytes. Returns the writer's completion error, once, if it gave one.
    pub fn read(&mut self) -> Read<'_> {
        Read { reader: Some(self) }
    }

    /// Like [`read`](Self::read) without waiting: `None` when a read would wait.
    pub fn try_read(&mut self) -> Option<io::Result<ReadResult<'_>>> {
        // One lock for the readiness check and the snapshot of the segments.
        let snapshot = {
            let mut inner = self.shared.lock();
            let ready = inner.state.try_read()?;
            Snapshot::take(ready, &inner, &mut self.chunks)
        };
        Some(self.result(snapshot))
    }

    fn result(&mut self, snapshot: io::Result<Snapshot>) -> io::Result<ReadResult<'_>> {
        let Snapshot {
            start,
            len,
            completed,
            canceled,
        } = snapshot?;
        self.cursor.read_at(start, len, completed);
        Ok(ReadResult {
            chunks: contiguous(&mut self.chunks),
            len,
            completed,
            canceled,
        })
    }

    /// Reports progress on the last read result: bytes before `consumed` are released, bytes
    /// before `examined` were looked at. If `examined` is the whole result, the next
    /// [`read`](Self::read) waits for new bytes; otherwise it returns at once. Backpressure
    /// counts examined bytes.
    ///
    /// Errors (without changing anything): no read to advance, `consumed > examined`,
    /// `examined` beyond the result, or `examined` moving backwards.
    pub fn advance_to(&mut self, consumed: usize, examined: usize) -> io::Result<()> {
        self.advance_then(consumed, examined, |_, _| ())
    }

    /// [`advance_to`](Self::advance_to), then [`try_read`](Self::try_read), under one lock:
    /// a protocol loop that consumed one message looks for the next (pipelined requests)
    /// for the price of one lock instead of two. `Ok(None)` when a read would wait.
    ///
    /// ```
    /// use std::task::{Context, Waker};
    /// let (mut reader, mut writer) = ringhop_pipes::Pipe::new(Default::default())?;
    /// writer.write(b"onetwo");
    /// let _ = writer.poll_flush(&mut Context::from_waker(Waker::noop()));
    /// assert_eq!(reader.try_read().unwrap().unwrap().to_vec(), b"onetwo");
    /// let next = reader.advance_and_try_read(3, 3).unwrap().unwrap().unwrap();
    /// assert_eq!(next.to_vec(), b"two");
    /// assert!(reader.advance_and_try_read(3, 3).unwrap().is_none());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn advance_and_try_read(
        &mut self,
        consumed: usize,
        examined: usize,
    ) -> io::Result<Option<io::Result<ReadResult<'_>>>> {
        let snapshot = self.advance_then(consumed, examined, |inner, chunks| {
            let ready = inner.state.try_read()?;
            Some(Snapshot::take(ready, inner, chunks))
        })?;
        Ok(snapshot.map(|snapshot| self.result(snapshot)))
    }

    /// [`advance_to`](Self::advance_to), then a poll of the next read, under one lock: a
    /// send pump's step (the bytes went out, what is next?), or a byte-stream adapter that
    /// consumes what it copied out when it is asked for more. Unlike [`read`](Self::read), it
    /// takes nothing of the task's cooperative budget.
    ///
    /// ```
    /// use std::task::{Context, Poll, Waker};
    /// let (mut reader, mut writer) = ringhop_pipes::Pipe::new(Default::default())?;
    /// let mut cx = Context::from_waker(Waker::noop());
    /// writer.write(b"onetwo");
    /// let _ = writer.poll_flush(&mut cx);
    /// assert_eq!(reader.try_read().unwrap()?.len(), 6);
    /// let Poll::Ready(next) = reader.advance_and_poll_read(3, 3, &mut cx)? else { panic!() };
    /// assert_eq!(next?.to_vec(), b"two");
    /// // All consumed: the poll waits (the waker is woken by the next flush).
    /// assert!(reader.advance_and_poll_read(3, 3, &mut cx)?.is_pending());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn advance_and_poll_read(
        &mut self,
        consumed: usize,
        examined: usize,
        cx: &mut Context<'_>,
    ) -> io::Result<Poll<io::Result<ReadResult<'_>>>> {
        let snapshot = self.advance_then(consumed, examined, |inner, chunks| {
            match inner.state.poll_read(cx) {
                Poll::Pending => None,
                Poll::Ready(ready) => Some(Snapshot::take(ready, inner, chunks)),
            }
        })?;
        Ok(match snapshot {
            None => Poll::Pending,
            Some(snapshot) => Poll::Ready(self.result(snapshot)),
        })
    }

    /// The advance, then `then` under the same lock (with the reader's chunks, for a
    /// snapshot); the writer is woken once the lock is released.
    fn advance_then<T>(
        &mut self,
        consumed: usize,
        examined: usize,
        then: impl FnOnce(&mut Inner, &mut VecDeque<Chunk>) -> T,
    ) -> io::Result<T> {
        // Fields, not `self`, under the lock: cloning the `Arc` to free `self` costs two
        // atomic operations per call.
        let mut inner = self.shared.lock();
        let waker =
            self.cursor
                .advance_locked(&self.shared.pool, &mut inner, consumed, examined)?;
        let after = then(&mut inner, &mut self.chunks);
        drop(inner);
        if let Some(waker) = waker {
            self.shared.wake_writer(waker);
        }
        Ok(after)
    }

    /// The last read's result again, without asking the pipe (no lock), while no advance
    /// has reported on it: the same bytes, as they were (bytes committed since are not in
    /// it; [`try_read`](Self::try_read) sees them). A protocol loop that found several
    /// messages in one read takes them one by one from it, and advances once past all of
    /// them. `None` before a read, and after an advance.
    ///
    /// ```
    /// use std::task::{Context, Waker};
    /// let (mut reader, mut writer) = ringhop_pipes::Pipe::new(Default::default())?;
    /// writer.write(b"onetwo");
    /// let _ = writer.poll_flush(&mut Context::from_waker(Waker::noop()));
    /// assert_eq!(reader.try_read().unwrap()?.len(), 6);
    /// assert_eq!(reader.last_read().unwrap().to_vec(), b"onetwo");
    /// reader.advance_to(6, 6)?;
    /// assert!(reader.last_read().is_none());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[inline]
    pub fn last_read(&mut self) -> Option<ReadResult<'_>> {
        if !self.cursor.reading {
            return None;
        }
        // `chunks` is the snapshot the read took, kept until the next one: its blocks stay
        // in the segment list until an advance through this reader releases them.
        Some(ReadResult {
            chunks: contiguous(&mut self.chunks),
            len: self.cursor.len,
            completed: self.cursor.completed,
            canceled: false,
        })
    }

    /// Whether the last [`advance_to`](Self::advance_to) left bytes of its read unconsumed,
    /// so a read now would return at once — without asking the pipe (no lock). A protocol
    /// loop uses it to tell "more requests are buffered" (look before answering) from "wait
    /// for the peer" (answer first); bytes committed since the last read are not seen here.
    pub fn left_unconsumed(&self) -> bool {
        self.cursor.left_unconsumed
    }

    /// Marks this reader as a transport's send pump: the writer's flushes may then queue
    /// the connection's send instead of waking the reader (`transport::defer_send`).
    pub(crate) fn mark_send_pump(&self) {
        self.shared.mark_reader_sends();
    }

    /// Makes a pending (or the next) read return at once with `is_canceled()` set.
    pub fn cancel_pending_read(&self) {
        let (waker, reader_sends) = {
            let mut inner = self.shared.lock();
            (inner.state.cancel_read(), inner.reader_sends)
        };
        if let Some(waker) = waker {
            self.shared.wake_reader(waker, reader_sends);
        }
    }

    /// Ends the reading side: the writer's next flush returns `completed` (or `error`), and
    /// unread bytes are released.
    pub fn complete(&mut self, error: Option<io::Error>) {
        if self.completed {
            return;
        }
        self.completed = true;
        self.cursor.reading = false;
        self.chunks.clear();
        let waker = {
            let mut inner = self.shared.lock();
            let waker = inner.state.complete_reader(error);
            let committed = inner.state.committed;
            inner.state.consumed = committed;
            inner.state.examined = committed;
            let pool = self.shared.pool.clone();
            if inner.state.both_completed() {
                inner.release_all_unsynchronized(&pool);
            } else {
                inner.release_consumed_unsynchronized(&pool);
            }
            waker
        };
        if let Some(waker) = waker {
            self.shared.wake_writer(waker);
        }
    }

    /// Bytes flushed but not yet consumed, and segments held (for tests and metrics).
    pub fn buffered(&self) -> (usize, usize) {
        let inner = self.shared.lock();
        (
            (inner.state.committed - inner.state.consumed) as usize,
            inner.segments.len(),
        )
    }
}

impl Drop for PipeReader {
    fn drop(&mut self) {
        self.complete(None);
    }
}

impl fmt::Debug for PipeReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PipeReader")
            .field("completed", &self.completed)
            .finish()
    }
}

/// Where the reader is: the last read result (position, length), and whether the last
/// advance left part of it unconsumed. A field of its own so the work of an advance can
/// borrow it while the pipe's lock borrows the reader's `shared`.
///
/// The read's position and length are plain fields with a flag, not an `Option` of a pair:
/// the pair's tag would widen every reader by a word (and two readers live in every
/// connection's idle state).
#[derive(Default)]
struct Cursor {
    /// Position of the last read result.
    start: u64,
    /// Its length.
    len: usize,
    /// A read result is out that no advance reported on yet.
    reading: bool,
    left_unconsumed: bool,
    /// The last read saw the writer's completion.
    completed: bool,
}

impl Cursor {
    fn read_at(&mut self, start: u64, len: usize, completed: bool) {
        (self.start, self.len, self.reading) = (start, len, true);
        self.completed = completed;
    }

    /// The work of `advance_to` under the caller's lock; returns the writer's waker.
    fn advance_locked(
        &mut self,
        pool: &SegmentPool,
        inner: &mut Inner,
        consumed: usize,
        examined: usize,
    ) -> io::Result<Option<std::task::Waker>> {
        if !self.reading {
            return Err(invalid("advance_to called without a preceding read"));
        }
        let (start, len) = (self.start, self.len);
        if consumed > examined {
            return Err(invalid(format!(
                "advance_to: consumed ({consumed}) must not exceed examined ({examined})"
            )));
        }
        if examined > len {
            return Err(invalid(format!(
                "advance_to: examined ({examined}) beyond the {len} bytes read"
            )));
        }
        let examined_at = start + examined as u64;
        if examined_at < inner.state.examined {
            return Err(invalid(format!(
                "advance_to: examined moved backwards ({examined} bytes into this read is \
                 before the {} bytes examined earlier)",
                inner.state.examined - start
            )));
        }
        let waker = inner.state.advance(start + consumed as u64, examined_at);
        inner.release_consumed_unsynchronized(pool);
        self.reading = false;
        self.left_unconsumed = consumed < len;
        Ok(waker)
    }
}

fn invalid(message: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message.into())
}

/// What a read saw, taken under the same lock as its readiness.
struct Snapshot {
    start: u64,
    len: usize,
    completed: bool,
    canceled: bool,
}

/// The chunks as one slice. They almost always are already (a read's chunks are appended
/// to a list emptied from its front): then this is inlined and calls nothing.
#[inline]
fn contiguous(chunks: &mut VecDeque<Chunk>) -> &[Chunk] {
    if chunks.as_slices().1.is_empty() {
        chunks.as_slices().0
    } else {
        chunks.make_contiguous()
    }
}

impl Snapshot {
    /// Brings `chunks` up to the unconsumed committed bytes: drops consumed ones from the
    /// front, appends what was committed since the last read at the back.
    fn take(ready: ReadReady, inner: &Inner, chunks: &mut VecDeque<Chunk>) -> io::Result<Snapshot> {
        let canceled = match ready {
            ReadReady::Error(err) => return Err(err),
            ReadReady::Data { canceled } => canceled,
        };
        let state = &inner.state;
        // Consumed bytes leave the front. Chunks left over are unconsumed, so their blocks
        // are still in the segment list (a block released and reused is never matched).
        while let Some(front) = chunks.front_mut() {
            if front.end() <= state.consumed {
                chunks.pop_front();
                continue;
            }
            if front.start < state.consumed {
                let skip = (state.consumed - front.start) as usize;
                front.start += skip as u64;
                front.offset += skip;
                front.len -= skip;
            }
            break;
        }
        // Committed bytes past what we hold join at the back: only the segments that end
        // beyond it are visited, found from the back of the list.
        let known = chunks.back().map_or(state.consumed, Chunk::end);
        if known < state.committed {
            // Found by index, not with `iter().rev()`: a VecDeque's reverse iterator over its two
            // halves costs more than the one or two segments visited.
            let segments = &inner.segments;
            let mut first = segments.len();
            while first > 0 && segments[first - 1].end() > known {
                first -= 1;
            }
            // (Indexed here too: `iter().skip()` and `range()` cost more.)
            #[allow(clippy::needless_range_loop)]
            for index in first..segments.len() {
                let segment = &segments[index];
                let from = segment.base.max(known);
                let to = segment.end().min(state.committed);
                if from >= to {
                    continue;
                }
                let block = Arc::as_ptr(&segment.block);
                match chunks.back_mut() {
                    // The writer filled more of the segment we already hold part of.
                    Some(last) if last.block == block && last.end() == from => {
                        last.len += (to - from) as usize;
                    }
                    _ => chunks.push_back(Chunk {
                        block,
                        start: from,
                        offset: (from - segment.base) as usize,
                        len: (to - from) as usize,
                    }),
                }
            }
        }
        Ok(Snapshot {
            start: state.consumed,
            len: (state.committed - state.consumed) as usize,
            completed: state.writer_completion_visible(),
            canceled,
        })
    }
}

/// The future of [`PipeReader::read`].
#[must_use = "futures do nothing unless awaited"]
pub struct Read<'a> {
    reader: Option<&'a mut PipeReader>,
}

impl<'a> Future for Read<'a> {
    type Output = io::Result<ReadResult<'a>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        // Each read takes a unit of the task's budget: a reader whose pipe is always full
        // still yields to the other tasks of its reactor.
        if ringhop_runtime::coop::poll_proceed(cx).is_pending() {
            return Poll::Pending;
        }
        let reader = this.reader.as_mut().expect("Read polled after completion");
        let snapshot = {
            let mut inner = reader.shared.lock();
            match inner.state.poll_read(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(ready) => Snapshot::take(ready, &inner, &mut reader.chunks),
            }
        };
        let reader = this.reader.take().expect("checked above");
        Poll::Ready(reader.result(snapshot))
    }
}

/// All unconsumed bytes of a pipe at the time of a read, as one or more contiguous chunks.
pub struct ReadResult<'a> {
    chunks: &'a [Chunk],
    len: usize,
    completed: bool,
    canceled: bool,
}

impl<'a> ReadResult<'a> {
    /// Total bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// `true` when there are no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The writer completed: no bytes will follow these.
    pub fn is_completed(&self) -> bool {
        self.completed
    }

    /// The read was cancelled by [`PipeReader::cancel_pending_read`].
    pub fn is_canceled(&self) -> bool {
        self.canceled
    }

    /// The chunks, in order.
    pub fn chunks(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.chunks.iter().map(Chunk::bytes)
    }

    /// The chunks as owned [`SegmentSlice`]s, for handing to a send: each keeps its segment's
    /// memory alive (and out of the pool) until dropped, even after `advance_to`.
    pub fn segments(&self) -> impl Iterator<Item = SegmentSlice> + 'a {
        self.chunks.iter().map(|chunk| SegmentSlice {
            block: chunk.owned_block(),
            offset: chunk.offset,
            len: chunk.len,
        })
    }

    /// The bytes as one slice when they sit in a single chunk (the common case), else `None`.
    pub fn as_contiguous(&self) -> Option<&'a [u8]> {
        match self.chunks {
            [] => Some(&[]),
            [chunk] => Some(chunk.bytes()),
            _ => None,
        }
    }

    /// Position of the first `byte`, searching across chunks.
    pub fn find_byte(&self, byte: u8) -> Option<usize> {
        let mut offset = 0;
        for chunk in self.chunks() {
            if let Some(i) = chunk.iter().position(|&b| b == byte) {
                return Some(offset + i);
            }
            offset += chunk.len();
        }
        None
    }

    /// Copies bytes from `start` into `dst`; returns how many were copied.
    pub fn copy_to(&self, start: usize, dst: &mut [u8]) -> usize {
        let mut skip = start;
        let mut copied = 0;
        for chunk in self.chunks() {
            if copied == dst.len() {
                break;
            }
            if skip >= chunk.len() {
                skip -= chunk.len();
                continue;
            }
            let chunk = &chunk[skip..];
            skip = 0;
            let n = chunk.len().min(dst.len() - copied);
            dst[copied..copied + n].copy_from_slice(&chunk[..n]);
            copied += n;
        }
        copied
    }

    /// All bytes, copied into a new `Vec`.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len);
        self.chunks().for_each(|chunk| out.extend_from_slice(chunk));
        out
    }
}

impl fmt::Debug for ReadResult<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReadResult")
            .field("len", &self.len)
            .field("chunks", &self.chunks.len())
            .field("completed", &self.completed)
            .field("canceled", &self.canceled)
            .finish()
    }
}

/// Bytes of a pipe segment, owned: an [`IoBuf`] a send op can hold until its completion.
pub struct SegmentSlice {
    block: Arc<Block>,
    offset: usize,
    len: usize,
}

impl SegmentSlice {
    /// Drops the first `n` bytes (after a partial send).
    pub fn skip(&mut self, n: usize) {
        let n = n.min(self.len);
        self.offset += n;
        self.len -= n;
    }

    /// Number of bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// `true` when no bytes are left.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

// SAFETY: the bytes live in a heap block this slice keeps alive through its Arc; they are
// committed, so nobody writes them while the slice exists.
unsafe impl IoBuf for SegmentSlice {
    fn stable_ptr(&self) -> *const u8 {
        // SAFETY: offset + len ≤ the block's filled length ≤ its capacity.
        unsafe { self.block.as_ptr().add(self.offset) }
    }

    fn bytes_init(&self) -> usize {
        self.len
    }
}

impl fmt::Debug for SegmentSlice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SegmentSlice")
            .field("len", &self.len)
            .finish()
    }
}
