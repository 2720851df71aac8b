//! One reactor: a thread that owns a driver (io_uring or epoll), a scheduler (local executor
//! and remote queue) and a clock, and runs the loop that ties them together.
//!
//! The loop itself is `scheduler::turn` (shared with the loom models); this module supplies
//! what a turn drives: the executor, the driver and the timers.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::driver::{Driver, IoDriver};
use crate::scheduler::{self, turn, Local, Remote, Shared};
use crate::stats::Counters;
use crate::time::Clock;

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

/// One reactor: its scheduler, its driver and its clock, composed by `scheduler::turn`.
pub(crate) struct Reactor {
    local: Rc<Local>,
    driver: Rc<IoDriver>,
    clock: Rc<Clock>,
    budget: usize,
    spin_before_park: Duration,
}

impl Reactor {
    /// Builds a reactor on the calling thread, which becomes its thread.
    pub(crate) fn new(shared: Arc<Shared>, config: ReactorConfig) -> std::io::Result<Reactor> {
        let driver = IoDriver::new(
            config.driver,
            config.ring_entries,
            config.defer_taskrun,
            shared.remote.notifier().fd(),
            shared.counters.clone(),
        )?;
        let _ = shared.ring_flags.set(driver.ring_flags());
        Ok(Reactor {
            local: Rc::new(Local::new(shared)),
            driver: Rc::new(driver),
            clock: Rc::new(Clock::new()),
            budget: config.budget.max(1),
            spin_before_park: config.spin_before_park,
        })
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.local.shared
    }

    /// Makes this reactor the calling thread's: its scheduler, driver and clock become
    /// current for the layers that look them up.
    pub(crate) fn enter(&self) {
        crate::driver::set_current(Some(self.driver.clone()));
        crate::time::set_current(Some(self.clock.clone()));
        scheduler::set_current(Some(self.local.clone()));
    }

    /// Undoes [`Reactor::enter`], after shutdown.
    pub(crate) fn exit(&self) {
        scheduler::set_current(None);
        crate::time::set_current(None);
        crate::driver::set_current(None);
    }

    /// Runs the loop until the scheduler is told to stop.
    pub(crate) fn run(&self) {
        turn::run(&self.local.shared.remote, self);
    }

    fn submit_or_fail(&self, wait: Option<Option<Duration>>) {
        if let Err(err) = self.driver.submit(wait) {
            panic!(
                "the {} driver failed to wait on reactor {}: {err}",
                self.driver.kind(),
                self.local.shared.index
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
        let mut deadline = crate::time::deadline_after(Instant::now(), self.spin_before_park);
        if let Some(timer) = self.clock.next_deadline() {
            deadline = deadline.min(timer);
        }
        loop {
            if !self.local.shared.remote.is_empty() || self.driver.has_ready_work() {
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
            .clock
            .next_deadline()
            .map(|deadline| deadline.saturating_duration_since(Instant::now()));
        match timeout {
            Some(timeout) if timeout.is_zero() => self.submit_or_fail(None),
            Some(timeout) => self.submit_or_fail(Some(Some(timeout.max(MIN_WAIT)))),
            None => self.submit_or_fail(Some(None)),
        }
    }

    /// Reactor exit: refuse new posts, cancel every task, drop what was posted, and give
    /// the kernel back nothing it may still write to.
    pub(crate) fn shutdown(&self) {
        let (shared, executor) = (&self.local.shared, &self.local.executor);
        turn::shutdown(&shared.remote, || {
            let live = executor.live_tasks() > 0;
            executor.cancel_all(&shared.counters);
            // Queued for a submit that will not come: dropped with the tasks.
            self.local.before_submit.clear();
            live
        });
        self.driver.shutdown();
    }
}

impl turn::Hooks for Reactor {
    type Item = Remote;

    fn stopping(&self) -> bool {
        self.local.is_stopping()
    }

    fn take(&self, item: Remote) {
        let counters = &self.local.shared.counters;
        match item {
            Remote::Wake(task) => {
                Counters::bump_local(&counters.remote_wakes);
                self.local.executor.push_local(task);
            }
            Remote::Post(f) => {
                Counters::bump_local(&counters.posts);
                if let Err(payload) = catch_unwind(AssertUnwindSafe(f)) {
                    report_post_panic(self.local.shared.index, payload);
                }
            }
        }
    }

    fn budget(&self) -> usize {
        self.budget
    }

    fn run_tasks(&self, max: usize) -> usize {
        self.local.executor.run(max, &self.local.shared.counters)
    }

    fn before_submit(&self) {
        self.local.before_submit.run();
    }

    fn has_runnable(&self) -> bool {
        // Before-submit items left for the next turn are work too: parking on them would
        // leave them to an unrelated event.
        self.local.executor.has_runnable() || self.local.before_submit.has_pending()
    }

    fn spin(&self) -> bool {
        self.spin_for_work()
    }

    fn parked(&self) {
        Counters::bump_local(&self.local.shared.counters.parks);
    }

    fn submit(&self, wait: turn::Wait) {
        match wait {
            turn::Wait::No => self.submit_or_fail(None),
            turn::Wait::Park => self.submit_and_wait(),
        }
    }

    fn complete(&self) {
        self.driver.reap();
        self.clock.tick();
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
