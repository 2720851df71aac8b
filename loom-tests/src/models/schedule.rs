//! Model 2: concurrent wakes from two threads queue the task at most once per poll, and a
//! wake after a poll started always leads to another poll.
//!
//! Mutations it catches: any change to `task/state.rs` that lets two wakers both queue the
//! task ("task queued twice" — e.g. setting `SCHEDULED` with a load and a store instead of
//! one RMW), or that loses a wake arriving during a poll (the last poll never happens). The
//! wake path around the state word (`Header::enqueue` → `Schedule::schedule_remote` →
//! `RemoteQueue::push`) is the code of models 1 and 5.

use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;

use crate::sync::MpscQueue;
use crate::task::state::State;

struct Task {
    state: State,
    /// Entries of this task in the run queue right now.
    queued: AtomicUsize,
    queue: MpscQueue<()>,
}

impl Task {
    fn wake(&self) {
        if self.state.transition_to_scheduled() {
            let before = self.queued.fetch_add(1, Ordering::AcqRel);
            assert_eq!(before, 0, "task queued twice");
            self.queue.push(());
        }
    }

    /// The reactor: pops and "polls" once if the task is queued.
    fn run_once(&self) -> bool {
        if self.queue.pop().is_none() {
            return false;
        }
        self.queued.fetch_sub(1, Ordering::AcqRel);
        let snapshot = self.state.transition_to_running();
        assert!(
            snapshot.is_scheduled(),
            "polled a task that was not scheduled"
        );
        true
    }
}

#[test]
fn concurrent_wakes_schedule_once_per_poll() {
    loom::model(|| {
        let task = Arc::new(Task {
            state: State::new(),
            queued: AtomicUsize::new(0),
            queue: MpscQueue::new(),
        });
        // The first poll of a fresh task (spawned already scheduled).
        task.state.transition_to_running();
        let wakers: Vec<_> = (0..2)
            .map(|_| {
                let task = task.clone();
                thread::spawn(move || task.wake())
            })
            .collect();
        let mut polls = 0;
        if task.run_once() {
            polls += 1;
        }
        for waker in wakers {
            waker.join().unwrap();
        }
        while task.run_once() {
            polls += 1;
        }
        assert!(polls >= 1, "two wakes led to no poll");
        assert!(polls <= 2, "more polls than wakes");
        assert!(
            !task.state.load().is_scheduled(),
            "a wake was left without a poll"
        );
    });
}
