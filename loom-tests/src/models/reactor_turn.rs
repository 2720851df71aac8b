//! Model 5: the production reactor turn (`scheduler::turn::run` and `turn::shutdown`, the
//! functions the reactor thread runs) with a mock driver, against threads that push.
//!
//! - Wakes pushed while the reactor turns and parks are all delivered: a lost wake leaves the
//!   reactor parked forever, which loom reports as a deadlock. Marking the reactor awake after
//!   the drain instead of before it (`LateUnpark`) loses a wake in the flag-only protocol
//!   (`models::park` catches that mutant), but the real turn survives it: the queue re-check
//!   in `RemoteQueue::try_park` refuses to wait on a non-empty queue. The model below keeps
//!   that second line of defence proven.
//! - A post racing the reactor's shutdown is either drained by the reactor or refused and
//!   dropped by its producer; nothing is stranded in the queue (a stranded spawn is a
//!   `JoinHandle` that never resolves). Mutation caught: `closed` as a flag beside the park
//!   word, checked before the push (the protocol before the CLOSED bit).

use std::cell::Cell;

use loom::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;

use super::Eventfd;
use crate::scheduler::park::{AfterPush, ParkFlag, ParkWord, AWAKE, NOTIFIED};
use crate::scheduler::remote::RemoteQueue;
use crate::scheduler::turn::{self, Hooks, Wait};

/// A reactor with nothing but its queue: no tasks, and a driver whose only event is the
/// eventfd.
struct MockReactor<P: ParkWord> {
    remote: Arc<RemoteQueue<usize, Eventfd, P>>,
    received: Cell<usize>,
    expected: usize,
}

impl<P: ParkWord> Hooks for MockReactor<P> {
    type Item = usize;

    fn stopping(&self) -> bool {
        self.received.get() == self.expected
    }
    fn take(&self, _item: usize) {
        self.received.set(self.received.get() + 1);
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
            // The mock driver: its only completion source is the eventfd.
            self.remote.notifier().wait();
        }
    }
    fn complete(&self) {}
}

fn wakes_are_delivered<P: ParkWord + 'static>(producers: usize) {
    loom::model(move || {
        let remote: Arc<RemoteQueue<usize, Eventfd, P>> =
            Arc::new(RemoteQueue::new(Eventfd::new()));
        let threads: Vec<_> = (0..producers)
            .map(|i| {
                let remote = remote.clone();
                thread::spawn(move || remote.push(i).unwrap())
            })
            .collect();
        let reactor = MockReactor {
            remote: remote.clone(),
            received: Cell::new(0),
            expected: producers,
        };
        turn::run(&remote, &reactor);
        for thread in threads {
            thread.join().unwrap();
        }
    });
}

#[test]
fn the_reactor_turn_delivers_every_remote_wake() {
    wakes_are_delivered::<ParkFlag>(1);
    wakes_are_delivered::<ParkFlag>(2);
}

/// The park-order mutation: the reactor is marked awake after the drain (as if `unpark`
/// moved to the start of the next park), which wipes a NOTIFIED set during the drain.
struct LateUnpark(AtomicU8);

impl ParkWord for LateUnpark {
    fn new() -> Self {
        LateUnpark(AtomicU8::new(AWAKE))
    }
    fn after_push(&self) -> AfterPush {
        if self.0.fetch_or(NOTIFIED, Ordering::AcqRel) == 0 {
            AfterPush::Notify
        } else {
            AfterPush::Nothing
        }
    }
    fn try_park(&self) -> bool {
        // The unpark the turn did before its drain happens only now, after it.
        self.0.swap(AWAKE, Ordering::AcqRel);
        if self.0.load(Ordering::Acquire) & NOTIFIED != 0 {
            return false;
        }
        self.0.swap(0, Ordering::AcqRel) & NOTIFIED == 0
    }
    fn unpark(&self) {}
    fn close(&self) {}
    fn is_closed(&self) -> bool {
        false
    }
}

#[test]
fn the_queue_recheck_rescues_a_late_unpark_in_the_real_turn() {
    wakes_are_delivered::<LateUnpark>(2);
}

/// A posted item that counts its drops: it must be dropped exactly once, by the reactor's
/// drain or by its producer's reclaim.
struct Post(Arc<AtomicUsize>);

impl Drop for Post {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::AcqRel);
    }
}

/// A producer posts (as `ReactorHandle::post` does: skip when the queue is closed, push
/// otherwise) while the reactor shuts down.
fn post_racing_shutdown<P: ParkWord + 'static>() {
    loom::model(|| {
        let remote: Arc<RemoteQueue<Post, Eventfd, P>> = Arc::new(RemoteQueue::new(Eventfd::new()));
        let dropped = Arc::new(AtomicUsize::new(0));
        let producer = {
            let remote = remote.clone();
            let dropped = dropped.clone();
            thread::spawn(move || {
                if !remote.is_closed() {
                    let _ = remote.push(Post(dropped));
                }
            })
        };
        turn::shutdown(&remote, || false);
        producer.join().unwrap();
        let stranded = remote.pop().is_some();
        assert!(!stranded, "a post was stranded in a closed queue");
        assert!(
            dropped.load(Ordering::Acquire) <= 1,
            "a post was dropped twice"
        );
    });
}

#[test]
fn a_post_racing_shutdown_is_drained_or_refused() {
    post_racing_shutdown::<ParkFlag>();
}

/// Mutant: `closed` lives beside the park word; producers check it before pushing and the
/// push itself never learns that the reactor closed.
struct ClosedBeside {
    word: ParkFlag,
    closed: AtomicBool,
}

impl ParkWord for ClosedBeside {
    fn new() -> Self {
        ClosedBeside {
            word: ParkFlag::new(),
            closed: AtomicBool::new(false),
        }
    }
    fn after_push(&self) -> AfterPush {
        match self.word.after_push() {
            AfterPush::Reclaim => AfterPush::Nothing,
            other => other,
        }
    }
    fn try_park(&self) -> bool {
        self.word.try_park()
    }
    fn unpark(&self) {
        self.word.unpark()
    }
    fn close(&self) {
        self.closed.store(true, Ordering::Release);
    }
    fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }
}

#[test]
#[ignore = "mutant: must fail; run by mutants_are_caught"]
fn mutant_closed_flag_beside_the_word_strands_a_post() {
    post_racing_shutdown::<ClosedBeside>();
}
