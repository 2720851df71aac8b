//! `JoinHandle`: awaits a task's output, aborts it, or (when dropped) detaches it.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use super::header::Header;
use super::join_cell::{JoinError, TaskResult};

/// An owned permission to await a task's output.
///
/// Awaiting it yields the task's output. If the task panicked, awaiting re-raises the panic in
/// the awaiting task (like `std::thread::scope`); if it was aborted, awaiting panics with
/// "task was cancelled". To handle both without unwinding, await [`JoinHandle::try_join`],
/// which yields `Result<T, JoinError>`. Either way a panicking task never takes its reactor
/// down: the reactor catches the panic and keeps serving its other tasks.
///
/// Dropping a `JoinHandle` detaches the task; it keeps running. The handle is `Send` when the
/// output is, so a task spawned on one reactor can be awaited from any thread.
///
/// ```
/// use ringhop_runtime as rt;
/// let runtime = rt::Runtime::builder().reactors(1).build().unwrap();
/// let answer = runtime.block_on(async {
///     let task = rt::spawn_local(async { 6 * 7 });
///     task.await
/// });
/// assert_eq!(answer, 42);
/// ```
pub struct JoinHandle<T> {
    pub(crate) header: Arc<Header<T>>,
    done: bool,
    _output: PhantomData<T>,
}

impl<T> JoinHandle<T> {
    pub(crate) fn new(header: Arc<Header<T>>) -> Self {
        JoinHandle {
            header,
            done: false,
            _output: PhantomData,
        }
    }

    /// `true` once the task has finished (with output, panic or cancellation).
    pub fn is_finished(&self) -> bool {
        self.header.cell.state.load().is_complete()
    }

    /// Waits for the task and returns its result without unwinding.
    pub fn try_join(self) -> TryJoin<T> {
        TryJoin(self)
    }

    fn poll_result(&mut self, cx: &mut Context<'_>) -> Poll<TaskResult<T>> {
        assert!(!self.done, "JoinHandle polled after it returned Ready");
        let result = self.header.cell.poll_join(cx);
        if result.is_ready() {
            self.done = true;
        }
        result
    }
}

impl<T: 'static> JoinHandle<T> {
    /// Cancels the task: its reactor drops the future at its next turn (or right away if the
    /// task is idle) and the handle resolves to [`JoinError::Cancelled`]. No effect on a task
    /// that already finished. Callable from any thread. A [`spawn_blocking`](crate::spawn_blocking)
    /// job cannot be stopped once running; one still queued is dropped, and its handle
    /// resolves, when a pool thread takes it off the queue.
    pub fn abort(&self) {
        if self.header.cell.state.transition_to_aborted() {
            self.header.clone().enqueue();
        }
    }
}

impl<T> Future for JoinHandle<T> {
    type Output = T;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        match self.get_mut().poll_result(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(output)) => Poll::Ready(output),
            Poll::Ready(Err(JoinError::Panicked(payload))) => std::panic::resume_unwind(payload),
            Poll::Ready(Err(JoinError::Cancelled)) => panic!("task was cancelled"),
        }
    }
}

impl<T> Unpin for JoinHandle<T> {}

impl<T> Drop for JoinHandle<T> {
    fn drop(&mut self) {
        self.header.cell.drop_join_handle();
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("finished", &self.is_finished())
            .finish()
    }
}

/// The future returned by [`JoinHandle::try_join`].
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct TryJoin<T>(JoinHandle<T>);

impl<T> Future for TryJoin<T> {
    type Output = Result<T, JoinError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.get_mut().0.poll_result(cx)
    }
}
