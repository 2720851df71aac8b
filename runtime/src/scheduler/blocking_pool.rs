//! The blocking pool's threads: started on demand up to a bound, handed jobs through one
//! mutex-guarded queue and a condition variable, gone after an idle keep-alive. Every
//! hand-off here crosses threads (a reactor submits, pool threads take), so it is written
//! against `crate::sync` and model-checked in `loom-tests` (`models::blocking_pool`).

use std::collections::VecDeque;
use std::time::Duration;

use crate::sync::{thread, Arc, Condvar, Mutex};

/// Default bound on pool threads.
pub(crate) const DEFAULT_MAX_THREADS: usize = 512;
/// Default time an idle pool thread waits for work before it exits.
pub(crate) const DEFAULT_KEEP_ALIVE: Duration = Duration::from_secs(10);

/// A unit of blocking work.
pub(crate) type Job = Box<dyn FnOnce() + Send>;

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

    /// Queues `job`; wakes an idle thread or starts one if the bound allows. (An associated
    /// function: loom's `Arc` cannot be a method receiver.)
    pub(crate) fn submit(pool: &Arc<Self>, job: Job) {
        let this = &**pool;
        let mut state = this.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.shutdown {
            // Dropping the job resolves its handle as cancelled.
            return;
        }
        state.queue.push_back(job);
        if state.idle > 0 {
            state.idle -= 1;
            state.notified += 1;
            this.work.notify_one();
            return;
        }
        if state.threads >= this.max_threads {
            return;
        }
        state.threads += 1;
        drop(state);
        let pool = pool.clone();
        let spawned = thread::Builder::new()
            .name(format!("{}-blocking", this.thread_name))
            .spawn(move || pool.work_loop());
        if spawned.is_err() {
            // No thread: the job waits for one of the others (or is dropped at shutdown).
            this.state.lock().unwrap_or_else(|e| e.into_inner()).threads -= 1;
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
#[cfg(not(loom))]
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

/// Under loom there are no signals to block (and no libc).
#[cfg(loom)]
pub(crate) fn block_shutdown_signals() {}
