//! [`spawn_blocking`]: blocking work on a pool of plain threads, its result delivered to the
//! awaiting task on that task's own reactor.
//!
//! The pool belongs to a [`Runtime`](crate::Runtime) (all its reactors share it). Threads are
//! started on demand up to a bound (512 by default, as tokio), further jobs queue, and a
//! thread idle for the keep-alive time (10 s) exits. Pool threads block SIGINT and SIGTERM,
//! like the reactors once a server installs its signal watcher, so a signal is never taken
//! by a thread that cannot act on it.
//!
//! The job's output goes into the same join cell as a task's; completing it wakes whoever
//! awaits the [`JoinHandle`], which — being a reactor task — is pushed onto its reactor's
//! remote queue. Nothing is polled on a pool thread. The pool itself (threads, queue,
//! keep-alive) is `blocking_pool`, model-checked in `loom-tests`.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use crate::task::{Header, JoinError, JoinHandle};

/// Runs `f` on the current runtime's blocking pool and returns a handle to its output.
///
/// Use it for work that blocks the thread — a synchronous file read, a DNS lookup through
/// libc, a CPU-heavy hash — which would otherwise stall every connection of the reactor.
/// The awaiting task is woken on its own reactor (through the remote queue) when `f`
/// returns; a panic in `f` is re-raised where the handle is awaited (or reported by
/// [`JoinHandle::try_join`]). If the runtime shuts down before `f` starts, the handle
/// resolves as cancelled. [`JoinHandle::abort`] cancels a job that has not started; a
/// running one cannot be interrupted.
///
/// ```
/// let rt = ringhop_runtime::Runtime::builder().reactors(1).build()?;
/// let len = rt.block_on_local(|| async {
///     ringhop_runtime::spawn_blocking(|| std::fs::read("Cargo.toml").map(|b| b.len()))
///         .await
/// })?;
/// assert!(len > 0);
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// # Panics
///
/// When called outside a ringhop reactor.
pub fn spawn_blocking<F, T>(f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let local = super::current("spawn_blocking");
    let (owner, pool) = (local.shared.clone(), local.shared.blocking.clone());
    // The header is the job's join cell. Its owner is the calling reactor; it is never
    // queued there (only an abort would, and the executor finds no future under it).
    let header = Arc::new(Header::new(owner));
    let handle = JoinHandle::new(header.clone());
    let job = BlockingJob {
        header: Some(header),
        f: Some(f),
    };
    super::blocking_pool::BlockingPool::submit(&pool, Box::new(move || job.run()));
    handle
}

/// A job on its way to a pool thread; if it never runs, its handle resolves as cancelled.
struct BlockingJob<T, F> {
    header: Option<Arc<Header<T>>>,
    f: Option<F>,
}

impl<T: Send + 'static, F: FnOnce() -> T> BlockingJob<T, F> {
    fn run(mut self) {
        let (Some(header), Some(f)) = (self.header.take(), self.f.take()) else {
            return;
        };
        if header.cell.state.load().is_aborted() {
            header.finish_unstarted(Err(JoinError::Cancelled));
            return;
        }
        let result = catch_unwind(AssertUnwindSafe(f)).map_err(JoinError::Panicked);
        // Completing the cell wakes the awaiting task, on its reactor.
        header.finish_unstarted(result);
    }
}

impl<T, F> Drop for BlockingJob<T, F> {
    fn drop(&mut self) {
        if let Some(header) = self.header.take() {
            header.finish_unstarted(Err(JoinError::Cancelled));
        }
    }
}
