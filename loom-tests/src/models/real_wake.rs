//! Model 6: the real wake path end to end — a task's `Header` (the runtime's
//! `task/header.rs`, its waker) woken from two threads goes through `Schedule::schedule_remote`
//! into the real `RemoteQueue`, whose park word decides the eventfd write, and the real
//! reactor turn drains and "polls" it (the state word's `transition_to_running`, as the
//! executor does).
//!
//! Mutations it catches: a wake whose notify is lost (the parked reactor never wakes:
//! deadlock), and a wake that marks the task scheduled without queueing it (after the
//! threads join, a task still scheduled must be in the queue, for the next turn to poll).

use std::cell::Cell;
use std::sync::Arc;

use futures_task::ArcWake;
use loom::thread;

use super::Eventfd;
use crate::scheduler::remote::RemoteQueue;
use crate::scheduler::turn::{self, Hooks, Wait};
use crate::task::{Header, Schedule, TaskRef};

/// The reactor as tasks see it: its remote queue.
struct Owner {
    remote: RemoteQueue<Arc<dyn TaskRef>, Eventfd>,
}

impl Schedule for Owner {
    fn schedule_remote(&self, task: Arc<dyn TaskRef>) {
        let _ = self.remote.push(task);
    }
}

struct Reactor {
    owner: Arc<Owner>,
    task: Arc<Header<()>>,
    polls: Cell<usize>,
}

impl Hooks for Reactor {
    type Item = Arc<dyn TaskRef>;

    fn stopping(&self) -> bool {
        // Polled, and not woken again since (a later wake is checked after the join).
        self.polls.get() > 0 && !self.task.cell.state.load().is_scheduled()
    }
    fn take(&self, task: Arc<dyn TaskRef>) {
        // What the executor does first when it polls a task.
        task.state().transition_to_running();
        self.polls.set(self.polls.get() + 1);
    }
    fn budget(&self) -> usize {
        128
    }
    fn run_tasks(&self, _max: usize) -> usize {
        0
    }
    fn has_runnable(&self) -> bool {
        false
    }
    fn spin(&self) -> bool {
        false
    }
    fn parked(&self) {}
    fn submit(&self, wait: Wait) {
        if wait == Wait::Park {
            self.owner.remote.notifier().wait();
        }
    }
    fn complete(&self) {}
}

#[test]
fn a_task_woken_from_two_threads_is_polled_after_both_wakes() {
    loom::model(|| {
        let owner = Arc::new(Owner {
            remote: RemoteQueue::new(Eventfd::new()),
        });
        let task = Arc::new(Header::<()>::new(owner.clone()));
        // Spawned tasks start queued for their first poll; this one had it and waits now.
        task.cell.state.transition_to_running();
        let wakers: Vec<_> = (0..2)
            .map(|_| {
                let task = task.clone();
                thread::spawn(move || ArcWake::wake_by_ref(&task))
            })
            .collect();
        let reactor = Reactor {
            owner: owner.clone(),
            task: task.clone(),
            polls: Cell::new(0),
        };
        turn::run(&owner.remote, &reactor);
        for waker in wakers {
            waker.join().unwrap();
        }
        if task.cell.state.load().is_scheduled() {
            assert!(
                owner.remote.pop().is_some(),
                "a wake marked the task scheduled but never queued it"
            );
        }
    });
}
