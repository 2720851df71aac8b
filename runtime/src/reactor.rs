//! One reactor: a thread that owns an io_uring, a local executor, timers and a remote queue,
//! and runs the loop that ties them together.
//!
//! One iteration:
//! 1. drain the remote queue once (tasks woken elsewhere, posted closures);
//! 2. poll ready tasks, at most `budget` of them, so completions are never starved;
//! 3. one `io_uring_enter` submits every queued SQE; when nothing is runnable the reactor
//!    parks (park flag, queue re-check) and this enter also waits for a CQE or the nearest
//!    timer — a remote producer wakes it through the eventfd read kept in flight;
//! 4. reap all CQEs, waking their ops;
//! 5. fire due timers.
//!
//! Draining before polling matters for latency: a task woken remotely while the reactor was
//! parked is polled right after the wake-up, not after one more `io_uring_enter` (which would
//! submit the re-armed eventfd read first).

use std::cell::{Cell, RefCell};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::driver::{Driver, IoDriver};
use crate::handle::{Remote, Shared};
use crate::stats::Counters;
use crate::task::Executor;
use crate::time::Timers;

/// Settings a reactor is built with.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ReactorConfig {
    /// Resolved before the reactors start: `IoUring` or `Epoll`.
    pub(crate) driver: Driver,
    pub(crate) ring_entries: u32,
    pub(crate) defer_taskrun: bool,
    pub(crate) budget: usize,
    pub(crate) spin_before_park: Duration,
}

pub(crate) struct Reactor {
    pub(crate) shared: Arc<Shared>,
    pub(crate) executor: Executor,
    pub(crate) driver: Rc<IoDriver>,
    pub(crate) timers: RefCell<Timers>,
    now: Cell<Instant>,
    stopping: Cell<bool>,
    budget: usize,
    spin_before_park: Duration,
    due: RefCell<Vec<std::task::Waker>>,
}

impl Reactor {
    /// Builds a reactor on the calling thread, which becomes its thread.
    pub(crate) fn new(shared: Arc<Shared>, config: ReactorConfig) -> std::io::Result<Rc<Reactor>> {
        let driver = IoDriver::new(
            config.driver,
            config.ring_entries,
            config.defer_taskrun,
            shared.remote.notifier().fd(),
            shared.counters.clone(),
        )?;
        let _ = shared.ring_flags.set(driver.ring_flags());
        Ok(Rc::new(Reactor {
            shared,
            executor: Executor::new(),
            driver: Rc::new(driver),
            timers: RefCell::new(Timers::new()),
            now: Cell::new(Instant::now()),
            stopping: Cell::new(false),
            budget: config.budget.max(1),
            spin_before_park: config.spin_before_park,
            due: RefCell::new(Vec::new()),
        }))
    }

    pub(crate) fn now(&self) -> Instant {
        self.now.get()
    }

    /// Makes the loop exit after the current iteration.
    pub(crate) fn stop(&self) {
        self.stopping.set(true);
    }

    /// Runs the loop until [`Reactor::stop`].
    pub(crate) fn run(&self) {
        let counters = &*self.shared.counters;
        while !self.stopping.get() {
            self.drain_remote(counters);
            self.executor.run(self.budget, &self.shared, counters);
            if self.stopping.get() {
                break;
            }
            self.submit_or_park(counters);
            self.driver.reap();
            self.now.set(Instant::now());
            self.fire_timers();
        }
    }

    fn drain_remote(&self, counters: &Counters) {
        // Bounded, so producers faster than the reactor cannot starve local tasks and I/O.
        for _ in 0..4096 {
            match self.shared.remote.pop() {
                Some(Remote::Wake(task)) => {
                    Counters::bump_local(&counters.remote_wakes);
                    self.executor.push_local(task);
                }
                Some(Remote::Post(f)) => {
                    Counters::bump_local(&counters.posts);
                    if let Err(payload) = catch_unwind(AssertUnwindSafe(f)) {
                        report_post_panic(self.shared.index, payload);
                    }
                }
                None => break,
            }
        }
    }

    fn submit_or_park(&self, counters: &Counters) {
        if let Err(err) = self.try_submit_or_park(counters) {
            panic!(
                "the {} driver failed to wait on reactor {}: {err}",
                self.driver.kind(),
                self.shared.index
            );
        }
    }

    fn try_submit_or_park(&self, counters: &Counters) -> std::io::Result<()> {
        if self.executor.has_runnable() || self.spin()? {
            return self.driver.submit(None);
        }
        let result = match self.shared.remote.try_park() {
            Some(true) => {
                Counters::bump_local(&counters.parks);
                self.submit_and_wait()
            }
            Some(false) => {
                Counters::bump_local(&counters.parks);
                self.driver.submit(None)
            }
            None => self.driver.submit(None),
        };
        self.shared.remote.unpark();
        result
    }

    /// With [`Builder::spin_before_park`](crate::Builder::spin_before_park): submits what is
    /// queued, then watches the remote queue and the rings for up to the spin time. `true`
    /// when something arrived (the caller then does not park).
    fn spin(&self) -> std::io::Result<bool> {
        if self.spin_before_park.is_zero() {
            return Ok(false);
        }
        self.driver.submit(None)?;
        let mut deadline = Instant::now() + self.spin_before_park;
        if let Some(timer) = self.timers.borrow_mut().next_deadline() {
            deadline = deadline.min(timer);
        }
        loop {
            if !self.shared.remote.is_empty() || self.driver.has_ready_work() {
                return Ok(true);
            }
            // Checking the clock every turn costs about as much as the checks themselves.
            for _ in 0..16 {
                std::hint::spin_loop();
            }
            if Instant::now() >= deadline {
                return Ok(false);
            }
        }
    }

    /// Submits and blocks until a CQE arrives (an op, the eventfd) or the next timer is due.
    fn submit_and_wait(&self) -> std::io::Result<()> {
        let timeout = self
            .timers
            .borrow_mut()
            .next_deadline()
            .map(|deadline| deadline.saturating_duration_since(Instant::now()));
        match timeout {
            Some(timeout) if timeout.is_zero() => self.driver.submit(None),
            Some(timeout) => self.driver.submit(Some(Some(timeout.max(MIN_WAIT)))),
            None => self.driver.submit(Some(None)),
        }
    }

    fn fire_timers(&self) {
        let mut due = self.due.borrow_mut();
        self.timers.borrow_mut().take_due(self.now.get(), &mut due);
        for waker in due.drain(..) {
            waker.wake();
        }
    }

    /// Reactor exit: refuse new posts, cancel every task, drain what was posted, and give
    /// the kernel back nothing it may still write to.
    pub(crate) fn shutdown(&self) {
        self.shared.closed.store(true, Ordering::Release);
        loop {
            self.executor.cancel_all(&self.shared.counters);
            // Posted closures that never ran are dropped here (spawns resolve as cancelled).
            let mut drained = false;
            while let Some(remote) = self.shared.remote.pop() {
                drained = true;
                drop(remote);
            }
            if !drained && self.executor.live_tasks() == 0 {
                break;
            }
        }
        self.driver.shutdown();
    }
}

/// The shortest wait the reactor asks the kernel for: rounding below this buys nothing but
/// extra wake-ups.
const MIN_WAIT: Duration = Duration::from_micros(50);

fn report_post_panic(index: usize, payload: Box<dyn std::any::Any + Send>) {
    let message = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("non-string payload");
    eprintln!("ringhop: a closure posted to reactor {index} panicked: {message}");
}
