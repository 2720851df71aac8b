//! Model 4: closures posted from two threads each run exactly once on the reactor, through
//! the runtime's `RemoteQueue`.
//!
//! Mutations it catches: a queue that delivers an item twice or never (run counts other than
//! 1), and a park protocol that loses the producer's notify (deadlock).

use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;

use super::Eventfd;
use crate::scheduler::remote::RemoteQueue;

type Job = Box<dyn FnOnce() + Send>;

#[test]
fn posts_from_two_threads_run_exactly_once() {
    loom::model(|| {
        let remote: Arc<RemoteQueue<Job, Eventfd>> = Arc::new(RemoteQueue::new(Eventfd::new()));
        let runs: Arc<[AtomicUsize; 2]> = Arc::new([AtomicUsize::new(0), AtomicUsize::new(0)]);
        let producers: Vec<_> = (0..2)
            .map(|i| {
                let remote = remote.clone();
                let runs = runs.clone();
                thread::spawn(move || {
                    remote
                        .push(Box::new(move || {
                            runs[i].fetch_add(1, Ordering::Relaxed);
                        }))
                        .unwrap()
                })
            })
            .collect();
        let mut ran = 0;
        loop {
            remote.unpark();
            while let Some(job) = remote.pop() {
                job();
                ran += 1;
            }
            if ran == 2 {
                break;
            }
            if remote.try_park() == Some(true) {
                remote.notifier().wait();
            }
        }
        for producer in producers {
            producer.join().unwrap();
        }
        assert!(remote.pop().is_none(), "a closure was queued twice");
        assert_eq!(runs[0].load(Ordering::Relaxed), 1);
        assert_eq!(runs[1].load(Ordering::Relaxed), 1);
    });
}
