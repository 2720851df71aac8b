//! `PipeOptions`: thresholds, segment size, pool and schedulers of a pipe.

use std::io;
use std::sync::Arc;

use crate::scheduler::PipeScheduler;
use crate::segment::SegmentPool;

/// How a [`Pipe`](crate::Pipe) buffers and where its continuations run.
///
/// ```
/// use ringhop_pipes::PipeOptions;
/// let options = PipeOptions::default()
///     .pause_writer_threshold(1 << 20)
///     .resume_writer_threshold(512 << 10);
/// assert!(options.validate().is_ok());
/// assert!(PipeOptions::default().resume_writer_threshold(1 << 30).validate().is_err());
/// ```
#[derive(Clone, Debug)]
pub struct PipeOptions {
    pub(crate) pause: usize,
    pub(crate) resume: usize,
    pub(crate) minimum_segment_size: usize,
    pub(crate) pool: Option<Arc<SegmentPool>>,
    pub(crate) reader_scheduler: Option<PipeScheduler>,
    pub(crate) writer_scheduler: Option<PipeScheduler>,
}

impl Default for PipeOptions {
    /// 64 KiB pause, 32 KiB resume, 4 KiB segments, the current reactor's pool and scheduler.
    fn default() -> Self {
        PipeOptions {
            pause: 64 * 1024,
            resume: 32 * 1024,
            minimum_segment_size: 4096,
            pool: None,
            reader_scheduler: None,
            writer_scheduler: None,
        }
    }
}

impl PipeOptions {
    /// Unexamined bytes at which `flush` starts waiting; 0 means never.
    pub fn pause_writer_threshold(mut self, bytes: usize) -> Self {
        self.pause = bytes;
        self
    }

    /// Unexamined bytes below which a paused `flush` resumes; must be ≤ the pause threshold.
    /// 0: once the reader examined everything.
    pub fn resume_writer_threshold(mut self, bytes: usize) -> Self {
        self.resume = bytes;
        self
    }

    /// Smallest segment handed out by `buffer_mut` (the pooled size when no pool is given).
    pub fn minimum_segment_size(mut self, bytes: usize) -> Self {
        self.minimum_segment_size = bytes.max(64);
        self
    }

    /// The pool segments come from and return to. Default: the current thread's
    /// pool when `minimum_segment_size` is 4 KiB, else a pool of that size for this pipe,
    /// which keeps two spare segments at most.
    pub fn pool(mut self, pool: Arc<SegmentPool>) -> Self {
        self.pool = Some(pool);
        self
    }

    /// Where a waiting reader is woken. Default: [`PipeScheduler::current`].
    pub fn reader_scheduler(mut self, scheduler: PipeScheduler) -> Self {
        self.reader_scheduler = Some(scheduler);
        self
    }

    /// Where a paused writer is woken. Default: [`PipeScheduler::current`].
    pub fn writer_scheduler(mut self, scheduler: PipeScheduler) -> Self {
        self.writer_scheduler = Some(scheduler);
        self
    }

    /// Checks the thresholds: resume ≤ pause (unless pause is 0, "never pause").
    pub fn validate(&self) -> io::Result<()> {
        if self.pause != 0 && self.resume > self.pause {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "resume_writer_threshold ({}) must not exceed pause_writer_threshold ({}); \
                     lower the resume threshold or raise the pause threshold",
                    self.resume, self.pause
                ),
            ));
        }
        Ok(())
    }
}
