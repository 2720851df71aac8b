//! Model 1: a remote wake racing with the reactor parking is never lost.
//!
//! The reactor below is the loop of `reactor.rs` reduced to its hand-off: unpark, drain, and
//! park only when the flag allows. A lost wake leaves the reactor waiting forever, which loom
//! reports as a deadlock. The flag is modelled alone (no queue re-check), since the design
//! claims the flag suffices; a second model checks `RemoteQueue` as the reactor uses it.

use loom::sync::atomic::{AtomicU8, Ordering};
use loom::sync::Arc;
use loom::thread;

use super::Eventfd;
use crate::scheduler::park::{AfterPush, Notify, ParkFlag, ParkWord, AWAKE, NOTIFIED};
use crate::scheduler::remote::RemoteQueue;
use crate::sync::MpscQueue;

/// The three moves of the park protocol, so a deliberately broken variant can be checked too.
trait Park: Send + Sync + 'static {
    fn notify_needed(&self) -> bool;
    fn try_park(&self) -> bool;
    fn unpark(&self);
}

impl Park for ParkFlag {
    fn notify_needed(&self) -> bool {
        self.after_push() == AfterPush::Notify
    }
    fn try_park(&self) -> bool {
        ParkWord::try_park(self)
    }
    fn unpark(&self) {
        ParkWord::unpark(self)
    }
}

/// Mutant: marks the reactor awake with a plain store, wiping a concurrent NOTIFIED.
struct StoreAwake(AtomicU8);

impl Park for StoreAwake {
    fn notify_needed(&self) -> bool {
        self.0.fetch_or(NOTIFIED, Ordering::AcqRel) == 0
    }
    fn try_park(&self) -> bool {
        self.0.swap(0, Ordering::AcqRel) & NOTIFIED == 0
    }
    fn unpark(&self) {
        self.0.store(AWAKE, Ordering::Release);
    }
}

#[derive(Clone, Copy)]
enum Order {
    /// The protocol: set AWAKE, then drain.
    UnparkThenDrain,
    /// Mutant: drain, then set AWAKE.
    DrainThenUnpark,
}

struct Shared<P> {
    queue: MpscQueue<usize>,
    flag: P,
    eventfd: Eventfd,
}

fn check<P: Park>(flag: impl Fn() -> P + Sync + Send + 'static, order: Order, producers: usize) {
    loom::model(move || {
        let shared = Arc::new(Shared {
            queue: MpscQueue::new(),
            flag: flag(),
            eventfd: Eventfd::new(),
        });
        let threads: Vec<_> = (0..producers)
            .map(|i| {
                let shared = shared.clone();
                thread::spawn(move || {
                    shared.queue.push(i);
                    if shared.flag.notify_needed() {
                        shared.eventfd.notify();
                    }
                })
            })
            .collect();
        let mut received = 0;
        loop {
            match order {
                Order::UnparkThenDrain => {
                    shared.flag.unpark();
                    while shared.queue.pop().is_some() {
                        received += 1;
                    }
                }
                Order::DrainThenUnpark => {
                    while shared.queue.pop().is_some() {
                        received += 1;
                    }
                    shared.flag.unpark();
                }
            }
            if received == producers {
                break;
            }
            if shared.flag.try_park() {
                shared.eventfd.wait();
            }
        }
        for thread in threads {
            thread.join().unwrap();
        }
    });
}

#[test]
fn remote_wake_racing_park_is_never_lost() {
    check(<ParkFlag as ParkWord>::new, Order::UnparkThenDrain, 1);
    check(<ParkFlag as ParkWord>::new, Order::UnparkThenDrain, 2);
}

// Mutants: each must make loom fail. A loom deadlock aborts the process, so they are ignored
// here and run in child processes by `super::mutants_are_caught`.
#[test]
#[ignore = "mutant: must fail; run by mutants_are_caught"]
fn mutant_drain_before_unpark_loses_a_wake() {
    check(<ParkFlag as ParkWord>::new, Order::DrainThenUnpark, 2);
}

#[test]
#[ignore = "mutant: must fail; run by mutants_are_caught"]
fn mutant_plain_store_of_awake_loses_a_wake() {
    check(
        || StoreAwake(AtomicU8::new(AWAKE)),
        Order::UnparkThenDrain,
        2,
    );
}

/// The same race through `RemoteQueue`.
#[test]
fn remote_queue_wake_is_never_lost() {
    loom::model(|| {
        let remote: Arc<RemoteQueue<usize, Eventfd>> = Arc::new(RemoteQueue::new(Eventfd::new()));
        let threads: Vec<_> = (0..2)
            .map(|i| {
                let remote = remote.clone();
                thread::spawn(move || remote.push(i).unwrap())
            })
            .collect();
        let mut received = 0;
        loop {
            remote.unpark();
            while remote.pop().is_some() {
                received += 1;
            }
            if received == 2 {
                break;
            }
            if remote.try_park() == Some(true) {
                remote.notifier().wait();
            }
        }
        for thread in threads {
            thread.join().unwrap();
        }
    });
}
