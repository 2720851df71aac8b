//! The shared core of a pipe: one mutex over the state and the segment list.

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::options::PipeOptions;
use crate::reader::PipeReader;
use crate::scheduler::PipeScheduler;
use crate::segment::{Segment, SegmentPool};
use crate::state::State;
use crate::writer::PipeWriter;

/// A single-producer, single-consumer byte pipe with System.IO.Pipelines semantics.
///
/// ```
/// use ringhop_pipes::{Pipe, PipeOptions};
/// let rt = ringhop_runtime::Runtime::builder().reactors(1).build().unwrap();
/// rt.block_on(async {
///     let (mut reader, mut writer) = Pipe::new(PipeOptions::default()).unwrap();
///     writer.write_all(b"hello pipe").await.unwrap();
///     let result = reader.read().await.unwrap();
///     assert_eq!(result.to_vec(), b"hello pipe");
///     let len = result.len();
///     reader.advance_to(len, len).unwrap();
/// });
/// ```
pub struct Pipe;

impl Pipe {
    /// Creates a pipe and returns its two ends. Fails when the options are inconsistent.
    #[allow(clippy::new_ret_no_self)]
    pub fn new(options: PipeOptions) -> io::Result<(PipeReader, PipeWriter)> {
        options.validate()?;
        let pool = options.pool.clone().unwrap_or_else(|| {
            if options.minimum_segment_size == 4096 {
                SegmentPool::current()
            } else {
                SegmentPool::private(options.minimum_segment_size)
            }
        });
        LIVE_PIPES.fetch_add(1, Ordering::Relaxed);
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner {
                state: State::new(options.pause as u64, options.resume as u64),
                segments: VecDeque::new(),
                writer_active: false,
                reader_sends: false,
            }),
            minimum_segment_size: options.minimum_segment_size,
            pause: options.pause,
            pool,
            reader_scheduler: options
                .reader_scheduler
                .clone()
                .unwrap_or_else(PipeScheduler::current),
            writer_scheduler: options
                .writer_scheduler
                .clone()
                .unwrap_or_else(PipeScheduler::current),
        });
        Ok((PipeReader::new(shared.clone()), PipeWriter::new(shared)))
    }
}

static LIVE_PIPES: AtomicUsize = AtomicUsize::new(0);

/// Pipes alive, process-wide (a pipe lives until both of its ends are gone): tests prove
/// with it that closed connections leak no pipe.
pub fn live_pipes() -> usize {
    LIVE_PIPES.load(Ordering::Relaxed)
}

impl Drop for Shared {
    fn drop(&mut self) {
        LIVE_PIPES.fetch_sub(1, Ordering::Relaxed);
    }
}

pub(crate) struct Shared {
    inner: Mutex<Inner>,
    pub(crate) minimum_segment_size: usize,
    /// The pause threshold, readable without the lock (it never changes).
    pub(crate) pause: usize,
    pub(crate) pool: Arc<SegmentPool>,
    pub(crate) reader_scheduler: PipeScheduler,
    pub(crate) writer_scheduler: PipeScheduler,
}

pub(crate) struct Inner {
    pub(crate) state: State,
    /// Segments in pipe order; the last one is the writer's tail.
    pub(crate) segments: VecDeque<Segment>,
    /// The writer holds a pointer into the tail segment (between `buffer_mut` and `flush`),
    /// so the reader must not release it even when fully consumed.
    pub(crate) writer_active: bool,
    /// The reader is a transport's send pump (set once, by the transport): only then may a
    /// wake of the reader be deferred to the reactor's next submit (`transport::defer_send`),
    /// and only then is the reactor's table of send pumps consulted. (Here rather than beside
    /// the schedulers: it fits in this struct's padding, and every connection has two pipes.)
    pub(crate) reader_sends: bool,
}

thread_local! {
    /// Pipe locks taken on this thread (a per-request cost the benches report).
    static LOCKS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Pipe locks taken so far on the calling thread (a reactor: its connections' pipes). The
/// HTTP benches divide it by the requests served.
pub fn lock_acquisitions() -> u64 {
    LOCKS.try_with(std::cell::Cell::get).unwrap_or(0)
}

impl Shared {
    /// Continues the waiting reader where its scheduler says; `reader_sends` as read under
    /// the lock that produced the wake.
    pub(crate) fn wake_reader(&self, waker: std::task::Waker, reader_sends: bool) {
        self.reader_scheduler.schedule(waker, reader_sends);
    }

    /// See [`Inner::reader_sends`]. Set at a connection's start, outside the lock counts of
    /// the request path.
    pub(crate) fn mark_reader_sends(&self) {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .reader_sends = true;
    }

    /// Continues the waiting writer where its scheduler says.
    pub(crate) fn wake_writer(&self, waker: std::task::Waker) {
        self.writer_scheduler.schedule(waker, false);
    }

    /// The pipe's one critical section.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        let _ = LOCKS.try_with(|locks| locks.set(locks.get() + 1));
        // A panic while holding the lock cannot leave positions half-updated (each update is
        // a few plain assignments), so a poisoned lock is still consistent.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Inner {
    /// Returns fully consumed segments to the pool, keeping the writer's active tail.
    pub(crate) fn release_consumed_unsynchronized(&mut self, pool: &SegmentPool) {
        while let Some(front) = self.segments.front() {
            let is_tail = self.segments.len() == 1;
            if front.end() > self.state.consumed || (is_tail && self.writer_active) {
                break;
            }
            if is_tail && front.end() < self.state.committed {
                break;
            }
            if let Some(segment) = self.segments.pop_front() {
                pool.give(segment.block);
            }
        }
    }

    /// Returns every segment to the pool (both sides done, or nobody will read).
    pub(crate) fn release_all_unsynchronized(&mut self, pool: &SegmentPool) {
        for segment in self.segments.drain(..) {
            pool.give(segment.block);
        }
        self.writer_active = false;
    }
}
