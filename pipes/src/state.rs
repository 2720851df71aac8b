//! The pipe's bookkeeping, free of memory and syscalls so loom can model it: positions,
//! thresholds, the two wakers, completion and cancellation.
//!
//! Positions count bytes since the pipe was created:
//! `consumed <= examined <= committed` (reader-owned `consumed`/`examined`, writer-owned
//! `committed`, all changed under the pipe's one lock).
//!
//! Backpressure counts *examined* bytes: `buffered = committed - examined`. A flush that
//! leaves `buffered >= pause` pauses the writer; it resumes once `buffered < resume`
//! (hysteresis), when the reader completes, or when the flush is cancelled. Whoever changes
//! state takes the other side's waker out under the lock and wakes it after releasing it.

use std::io;
use std::task::{Context, Poll, Waker};

/// What a finished read wait found.
#[derive(Debug)]
pub(crate) enum ReadReady {
    /// Data, completion or cancellation: build the result from the positions.
    Data { canceled: bool },
    /// The writer completed with this error.
    Error(io::Error),
}

/// What a finished flush wait found.
#[derive(Debug)]
pub(crate) enum FlushReady {
    Done { completed: bool, canceled: bool },
    Error(io::Error),
}

#[derive(Debug)]
pub(crate) struct State {
    pub(crate) committed: u64,
    pub(crate) consumed: u64,
    pub(crate) examined: u64,
    pause: u64,
    resume: u64,
    writer_paused: bool,
    reader_waker: Option<Waker>,
    writer_waker: Option<Waker>,
    pub(crate) writer_completed: bool,
    writer_error: Option<io::Error>,
    pub(crate) reader_completed: bool,
    reader_error: Option<io::Error>,
    read_canceled: bool,
    flush_canceled: bool,
}

impl State {
    pub(crate) fn new(pause: u64, resume: u64) -> Self {
        State {
            committed: 0,
            consumed: 0,
            examined: 0,
            pause,
            resume,
            writer_paused: false,
            reader_waker: None,
            writer_waker: None,
            writer_completed: false,
            writer_error: None,
            reader_completed: false,
            reader_error: None,
            read_canceled: false,
            flush_canceled: false,
        }
    }

    /// Bytes the reader has not examined yet: what backpressure counts.
    pub(crate) fn buffered(&self) -> u64 {
        self.committed - self.examined
    }

    /// Writer: publishes bytes up to `committed`; pauses the writer if the pipe is full.
    /// Returns the reader's waker when the reader can now make progress.
    #[must_use]
    pub(crate) fn commit(&mut self, committed: u64) -> Option<Waker> {
        debug_assert!(committed >= self.committed);
        let grew = committed > self.committed;
        self.committed = committed;
        if self.pause > 0 && self.buffered() >= self.pause && !self.reader_completed {
            self.writer_paused = true;
        }
        if grew {
            self.reader_waker.take()
        } else {
            None
        }
    }

    /// Writer: the flush's wait. Ready once the writer is not paused.
    pub(crate) fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<FlushReady> {
        if self.reader_completed {
            self.writer_paused = false;
            if let Some(err) = self.reader_error.take() {
                return Poll::Ready(FlushReady::Error(err));
            }
            return Poll::Ready(FlushReady::Done {
                completed: true,
                canceled: false,
            });
        }
        if self.flush_canceled {
            self.flush_canceled = false;
            return Poll::Ready(FlushReady::Done {
                completed: false,
                canceled: true,
            });
        }
        if !self.writer_paused {
            return Poll::Ready(FlushReady::Done {
                completed: false,
                canceled: false,
            });
        }
        store_waker(&mut self.writer_waker, cx);
        Poll::Pending
    }

    /// Reader: the read's wait. Ready when there are unexamined bytes, or on completion or
    /// cancellation.
    pub(crate) fn poll_read(&mut self, cx: &mut Context<'_>) -> Poll<ReadReady> {
        if let Some(ready) = self.try_read() {
            return Poll::Ready(ready);
        }
        store_waker(&mut self.reader_waker, cx);
        Poll::Pending
    }

    /// Reader: a read that does not wait. Some when there are unexamined bytes, on
    /// completion or cancellation.
    pub(crate) fn try_read(&mut self) -> Option<ReadReady> {
        if self.read_canceled {
            self.read_canceled = false;
            return Some(ReadReady::Data { canceled: true });
        }
        // Bytes flushed before the writer failed come first; its error follows them.
        if self.committed > self.examined {
            return Some(ReadReady::Data { canceled: false });
        }
        if let Some(err) = self.writer_error.take() {
            return Some(ReadReady::Error(err));
        }
        if self.writer_completed {
            return Some(ReadReady::Data { canceled: false });
        }
        None
    }

    /// Reader: moves `consumed` and `examined` (absolute positions, already validated against
    /// the last read). Returns the writer's waker if this resumed a paused writer.
    #[must_use]
    pub(crate) fn advance(&mut self, consumed: u64, examined: u64) -> Option<Waker> {
        debug_assert!(consumed <= examined && examined <= self.committed);
        self.consumed = consumed;
        self.examined = self.examined.max(examined);
        // A resume threshold of 0 means "once everything is examined".
        if self.writer_paused && self.buffered() < self.resume.max(1) {
            self.writer_paused = false;
            return self.writer_waker.take();
        }
        None
    }

    /// Whether the writer's completion is visible to the reader yet: not while its error is
    /// still to be delivered (the reader sees the bytes before it, then the error).
    pub(crate) fn writer_completion_visible(&self) -> bool {
        self.writer_completed && self.writer_error.is_none()
    }

    /// Writer: waits for the reader to complete (a writer with nothing to write that must
    /// still notice that nobody reads any more).
    pub(crate) fn poll_reader_completed(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.reader_completed {
            return Poll::Ready(());
        }
        store_waker(&mut self.writer_waker, cx);
        Poll::Pending
    }

    /// Writer completes: the reader sees the flushed bytes, then completion (and `error`).
    #[must_use]
    pub(crate) fn complete_writer(&mut self, error: Option<io::Error>) -> Option<Waker> {
        if self.writer_completed {
            return None;
        }
        self.writer_completed = true;
        self.writer_error = error;
        self.reader_waker.take()
    }

    /// Reader completes: a paused or later flush returns `completed` (or `error`).
    #[must_use]
    pub(crate) fn complete_reader(&mut self, error: Option<io::Error>) -> Option<Waker> {
        if self.reader_completed {
            return None;
        }
        self.reader_completed = true;
        self.reader_error = error;
        self.writer_paused = false;
        self.writer_waker.take()
    }

    #[must_use]
    pub(crate) fn cancel_read(&mut self) -> Option<Waker> {
        self.read_canceled = true;
        self.reader_waker.take()
    }

    #[must_use]
    pub(crate) fn cancel_flush(&mut self) -> Option<Waker> {
        if !self.writer_paused {
            // Pipelines semantics: a cancel with no flush pending applies to the next one.
            self.flush_canceled = true;
            return None;
        }
        self.flush_canceled = true;
        self.writer_paused = false;
        self.writer_waker.take()
    }

    pub(crate) fn both_completed(&self) -> bool {
        self.reader_completed && self.writer_completed
    }
}

fn store_waker(slot: &mut Option<Waker>, cx: &mut Context<'_>) {
    match slot {
        Some(existing) if existing.will_wake(cx.waker()) => {}
        _ => *slot = Some(cx.waker().clone()),
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::task::Waker;

    fn cx() -> Context<'static> {
        Context::from_waker(Waker::noop())
    }

    #[test]
    fn writer_pauses_at_threshold_and_resumes_below_resume_threshold() {
        let mut state = State::new(100, 50);
        let _ = state.commit(99);
        assert!(
            state.poll_flush(&mut cx()).is_ready(),
            "below pause: no wait"
        );
        let _ = state.commit(100);
        assert!(state.poll_flush(&mut cx()).is_pending(), "at pause: wait");
        // Examining down to 51 buffered bytes is not enough (hysteresis)...
        assert!(state.advance(49, 49).is_none());
        assert!(state.poll_flush(&mut cx()).is_pending());
        // ...below the resume threshold is.
        let _ = state.advance(51, 51);
        assert!(state.poll_flush(&mut cx()).is_ready());
    }

    #[test]
    fn resume_zero_resumes_once_everything_is_examined() {
        // "Resume when empty": the writer paused at 4 bytes went on waiting forever, since
        // no buffered count is below 0.
        let mut state = State::new(4, 0);
        let _ = state.commit(4);
        assert!(state.poll_flush(&mut cx()).is_pending());
        assert!(state.advance(3, 3).is_none());
        assert!(state.poll_flush(&mut cx()).is_pending());
        let _ = state.advance(4, 4);
        assert!(state.poll_flush(&mut cx()).is_ready());
    }

    #[test]
    fn pause_zero_never_blocks() {
        let mut state = State::new(0, 0);
        let _ = state.commit(1 << 40);
        assert!(state.poll_flush(&mut cx()).is_ready());
    }

    #[test]
    fn read_waits_only_for_unexamined_bytes() {
        let mut state = State::new(0, 0);
        assert!(state.poll_read(&mut cx()).is_pending());
        let _ = state.commit(10);
        assert!(state.poll_read(&mut cx()).is_ready());
        // Consumed nothing, examined everything: wait for more.
        let _ = state.advance(0, 10);
        assert!(state.poll_read(&mut cx()).is_pending());
        let _ = state.commit(11);
        assert!(state.poll_read(&mut cx()).is_ready());
        // Examined only part: the next read returns at once.
        let _ = state.advance(5, 10);
        assert!(state.poll_read(&mut cx()).is_ready());
    }

    #[test]
    fn completion_error_reaches_the_other_side_once() {
        let mut state = State::new(0, 0);
        let _ = state.complete_writer(Some(io::Error::other("boom")));
        assert!(matches!(
            state.poll_read(&mut cx()),
            Poll::Ready(ReadReady::Error(_))
        ));
        assert!(matches!(
            state.poll_read(&mut cx()),
            Poll::Ready(ReadReady::Data { canceled: false })
        ));
        let _ = state.complete_reader(None);
        assert!(matches!(
            state.poll_flush(&mut cx()),
            Poll::Ready(FlushReady::Done {
                completed: true,
                ..
            })
        ));
    }

    #[test]
    fn bytes_flushed_before_a_writer_error_are_read_before_it() {
        let mut state = State::new(0, 0);
        let _ = state.commit(10);
        let _ = state.complete_writer(Some(io::Error::other("reset")));
        assert!(matches!(
            state.poll_read(&mut cx()),
            Poll::Ready(ReadReady::Data { canceled: false })
        ));
        assert!(!state.writer_completion_visible(), "the error is still due");
        let _ = state.advance(10, 10);
        assert!(matches!(
            state.poll_read(&mut cx()),
            Poll::Ready(ReadReady::Error(_))
        ));
        assert!(state.writer_completion_visible());
    }

    #[test]
    fn reader_completion_wakes_a_writer_waiting_for_it() {
        let mut state = State::new(0, 0);
        assert!(state.poll_reader_completed(&mut cx()).is_pending());
        assert!(
            state.complete_reader(None).is_some(),
            "the waiting writer is woken"
        );
        assert!(state.poll_reader_completed(&mut cx()).is_ready());
    }

    #[test]
    fn cancel_pending_read_returns_canceled_once() {
        let mut state = State::new(0, 0);
        let _ = state.cancel_read();
        assert!(matches!(
            state.poll_read(&mut cx()),
            Poll::Ready(ReadReady::Data { canceled: true })
        ));
        assert!(state.poll_read(&mut cx()).is_pending());
    }
}
