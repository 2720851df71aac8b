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
//! remote queue. Nothing is polled on a pool thread.

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use crate::task::{Header, JoinError, JoinHandle};

/// Default bound on pool threads.
pub(crate) const DEFAULT_MAX_THREADS: usize = 512;
/// Default time an idle pool thread waits for work before it exits.
pub(crate) const DEFAULT_KEEP_ALIVE: Duration = Duration::from_secs(10);

type Job = Box<dyn FnOnce() + Send>;

/// A runtime's blocking pool.
pub(crate) struct BlockingPool {
    state: Mutex<PoolState>,
    work: Condvar,
    max_threads: usize,
    keep_alive: Duration,
    thread_name: String,
}

#[derive(Default)]
struct PoolState {
    queue: VecDeque<Job>,
    threads: usize,
    /// Threads waiting for work that no submitter has handed a job yet.
    idle: usize,
    /// Jobs handed to idle threads (each with a `notify_one`) that no thread took up yet.
    /// A submitter counts the thread it wakes as busy at once: counted idle until the
    /// thread itself woke, a second job submitted meanwhile only "woke" the same thread
    /// again and queued behind the first instead of getting a thread of its own.
    notified: usize,
    shutdown: bool,
}

impl BlockingPool {
    pub(crate) fn new(max_threads: usize, keep_alive: Duration, thread_name: String) -> Self {
        BlockingPool {
            state: Mutex::new(PoolState::default()),
            work: Condvar::new(),
            max_threads: max_threads.max(1),
            keep_alive,
            thread_name,
        }
    }

    /// Queues `job`; wakes an idle thread or starts one if the bound allows.
    fn submit(self: &Arc<Self>, job: Job) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.shutdown {
            // Dropping the job resolves its handle as cancelled.
            return;
        }
        state.queue.push_back(job);
        if state.idle > 0 {
            state.idle -= 1;
            state.notified += 1;
            self.work.notify_one();
            return;
        }
        if state.threads >= self.max_threads {
            return;
        }
        state.threads += 1;
        drop(state);
        let pool = self.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("{}-blocking", self.thread_name))
            .spawn(move || pool.work_loop());
        if spawned.is_err() {
            // No thread: the job waits for one of the others (or is dropped at shutdown).
            self.state.lock().unwrap_or_else(|e| e.into_inner()).threads -= 1;
        }
    }

    fn work_loop(&self) {
        block_shutdown_signals();
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        'work: loop {
            if let Some(job) = state.queue.pop_front() {
                drop(state);
                job();
                state = self.state.lock().unwrap_or_else(|e| e.into_inner());
                continue;
            }
            if state.shutdown {
                break;
            }
            state.idle += 1;
            loop {
                let (next, waited) = self
                    .work
                    .wait_timeout(state, self.keep_alive)
                    .unwrap_or_else(|e| e.into_inner());
                state = next;
                // Handed a job: the submitter counted this thread busy already. (Which
                // woken thread takes which notification does not matter: each taken one
                // is a thread no longer idle.)
                if state.notified > 0 {
                    state.notified -= 1;
                    continue 'work;
                }
                if state.shutdown || waited.timed_out() {
                    state.idle -= 1;
                    break 'work;
                }
                // A spurious wakeup: still idle.
            }
        }
        state.threads -= 1;
    }

    /// Runtime shutdown: threads finish the job they run and exit; queued jobs are dropped
    /// (their handles resolve as cancelled).
    pub(crate) fn shutdown(&self) {
        let queued = {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            state.shutdown = true;
            std::mem::take(&mut state.queue)
        };
        self.work.notify_all();
        drop(queued);
    }

    /// Threads alive in the pool (for tests of the bound and the keep-alive).
    pub(crate) fn threads(&self) -> usize {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).threads
    }
}

/// Blocks SIGINT and SIGTERM on the calling (pool) thread.
pub(crate) fn block_shutdown_signals() {
    // SAFETY: sigemptyset/sigaddset initialise a set we own; pthread_sigmask changes only the
    // calling thread's mask and accepts a null old-mask pointer.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

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
    pool.submit(Box::new(move || job.run()));
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
