//! One reactor: a thread that owns a driver (io_uring or epoll), a local executor, timers and a remote queue,
//! and runs the loop that ties them together.
//!
//! The loop itself is `scheduler::turn` (shared with the loom models); this module supplies
//! what a turn drives: the executor, the driver and the timers.

use std::cell::{Cell, RefCell};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::driver::{Driver, IoDriver};
use crate::handle::{Remote, Shared};
use crate::scheduler::{turn, Executor};
use crate::stats::Counters;
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
        turn::run(&self.shared.remote, self);
    }

    fn submit_or_fail(&self, wait: Option<Option<Duration>>) {
        if let Err(err) = self.driver.submit(wait) {
            panic!(
                "the {} driver failed to wait on reactor {}: {err}",
                self.driver.kind(),
                self.shared.index
            );
        }
    }

    /// With [`Builder::spin_before_park`](crate::Builder::spin_before_park): submits what is
    /// queued, then watches the remote queue and the driver for up to the spin time. `true`
    /// when something arrived (the caller then does not park).
    fn spin_for_work(&self) -> bool {
        if self.spin_before_park.is_zero() {
            return false;
        }
        self.submit_or_fail(None);
        let mut deadline = Instant::now() + self.spin_before_park;
        if let Some(timer) = self.timers.borrow_mut().next_deadline() {
            deadline = deadline.min(timer);
        }
        loop {
            if !self.shared.remote.is_empty() || self.driver.has_ready_work() {
                return true;
            }
            // Checking the clock every turn costs about as much as the checks themselves.
            for _ in 0..16 {
                std::hint::spin_loop();
            }
            if Instant::now() >= deadline {
                return false;
            }
        }
    }

    /// Submits and blocks until a completion or event arrives (an op, the eventfd) or the
    /// next timer is due.
    fn submit_and_wait(&self) {
        let timeout = self
            .timers
            .borrow_mut()
            .next_deadline()
            .map(|deadline| deadline.saturating_duration_since(Instant::now()));
        match timeout {
            Some(timeout) if timeout.is_zero() => self.submit_or_fail(None),
            Some(timeout) => self.submit_or_fail(Some(Some(timeout.max(MIN_WAIT)))),
            None => self.submit_or_fail(Some(None)),
        }
    }

    fn fire_timers(&self) {
        let mut due = self.due.borrow_mut();
        self.timers.borrow_mut().take_due(self.now.get(), &mut due);
        for waker in due.drain(..) {
            waker.wake();
        }
    }

    /// Reactor exit: refuse new posts, cancel every task, drop what was posted, and give
    /// the kernel back nothing it may still write to.
    pub(crate) fn shutdown(&self) {
        let counters = &self.shared.counters;
        turn::shutdown(&self.shared.remote, || {
            let live = self.executor.live_tasks() > 0;
            self.executor.cancel_all(counters);
            live
        });
        self.driver.shutdown();
    }
}

impl turn::Hooks for Reactor {
    type Item = Remote;

    fn stopping(&self) -> bool {
        self.stopping.get()
    }

    fn take(&self, item: Remote) {
        let counters = &self.shared.counters;
        match item {
            Remote::Wake(task) => {
                Counters::bump_local(&counters.remote_wakes);
                self.executor.push_local(task);
            }
            Remote::Post(f) => {
                Counters::bump_local(&counters.posts);
                if let Err(payload) = catch_unwind(AssertUnwindSafe(f)) {
                    report_post_panic(self.shared.index, payload);
                }
            }
        }
    }

    fn run_tasks(&self) {
        self.executor
            .run(self.budget, &self.shared, &self.shared.counters);
    }

    fn has_runnable(&self) -> bool {
        self.executor.has_runnable()
    }

    fn spin(&self) -> bool {
        self.spin_for_work()
    }

    fn parked(&self) {
        Counters::bump_local(&self.shared.counters.parks);
    }

    fn submit(&self, wait: turn::Wait) {
        match wait {
            turn::Wait::No => self.submit_or_fail(None),
            turn::Wait::Park => self.submit_and_wait(),
        }
    }

    fn complete(&self) {
        self.driver.reap();
        self.now.set(Instant::now());
        self.fire_timers();
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
