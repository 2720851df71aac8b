//! Model 7: the blocking pool (`runtime/src/scheduler/blocking_pool.rs`, the shipped file) —
//! its mutex-guarded queue, the idle/notified counts and the condition variable that hands
//! jobs from a submitting reactor to pool threads.
//!
//! Mutations it catches: a submitter that counts a notified thread as still idle, so a
//! second job queues behind the first instead of getting a thread of its own (the first
//! model deadlocks: the first job waits for the second); a lost notify, a thread that
//! misses shutdown, or a count that does not return to zero (the second model deadlocks in
//! its wait for the pool to empty, or fails its final checks).
//!
//! loom's `Condvar::wait_timeout` never times out, so the keep-alive exit is not modelled
//! here (the runtime's `blocking` integration tests cover it).

use std::time::Duration;

use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use loom::sync::{Arc, Notify};
use loom::thread;

use crate::blocking_pool::{BlockingPool, Job};

fn pool() -> Arc<BlockingPool> {
    Arc::new(BlockingPool::new(
        4,
        Duration::from_secs(10),
        "model".to_string(),
    ))
}

fn job(f: impl FnOnce() + Send + 'static) -> Job {
    Box::new(f)
}

/// A one-shot event between threads. (loom's `Notify` alone may wake spuriously: the flag
/// says whether the event happened.)
struct Event {
    happened: AtomicBool,
    notify: Notify,
}

impl Event {
    fn new() -> Arc<Event> {
        Arc::new(Event {
            happened: AtomicBool::new(false),
            notify: Notify::new(),
        })
    }

    fn set(&self) {
        self.happened.store(true, Ordering::Release);
        self.notify.notify();
    }

    fn wait(&self) {
        while !self.happened.load(Ordering::Acquire) {
            self.notify.wait();
        }
    }
}

/// Two jobs submitted back to back while the pool may have an idle thread: the first waits
/// for the second, so they need a thread each. Whichever interleaving the idle thread's wake
/// takes, both run.
#[test]
fn jobs_submitted_while_the_idle_thread_wakes_get_a_thread_each() {
    loom::model(|| {
        let pool = pool();
        // A first job, so that one thread exists and (in some interleavings) idles by the
        // time the next two arrive.
        let warmed = Event::new();
        let signal = warmed.clone();
        BlockingPool::submit(&pool, job(move || signal.set()));
        warmed.wait();

        let second_ran = Event::new();
        let both_ran = Event::new();
        let (waits_for_second, done) = (second_ran.clone(), both_ran.clone());
        BlockingPool::submit(
            &pool,
            job(move || {
                waits_for_second.wait();
                done.set();
            }),
        );
        BlockingPool::submit(&pool, job(move || second_ran.set()));
        both_ran.wait();

        // Every thread exits now: one left waiting would be a deadlock to loom.
        pool.shutdown();
    });
}

/// Jobs submitted from another thread race the runtime's shutdown: each job either runs or
/// is dropped (its handle then resolves as cancelled), exactly once, and every pool thread
/// exits — none is left waiting for work that will never come.
#[test]
fn a_shutdown_racing_submits_runs_or_drops_each_job_once_and_empties_the_pool() {
    loom::model(|| {
        let pool = pool();
        let finished = Arc::new(AtomicUsize::new(0));
        let each_finished = [Event::new(), Event::new()];
        let submitter = {
            let (pool, finished) = (pool.clone(), finished.clone());
            let each_finished = each_finished.clone();
            thread::spawn(move || {
                for event in each_finished {
                    let guard = Finished(finished.clone(), event);
                    BlockingPool::submit(&pool, job(move || drop(guard)));
                }
            })
        };
        pool.shutdown();
        submitter.join().unwrap();
        // Each job ran or was dropped (a lost one would leave this wait a deadlock); pool
        // threads still waiting after the shutdown would be one too.
        for event in &each_finished {
            event.wait();
        }
        assert_eq!(finished.load(Ordering::Acquire), 2, "a job finished twice");
    });
}

/// Counts a job as finished when dropped (after it ran, or unrun at shutdown), and says so.
struct Finished(Arc<AtomicUsize>, Arc<Event>);

impl Drop for Finished {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::AcqRel);
        self.1.set();
    }
}
