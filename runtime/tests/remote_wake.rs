//! Cross-thread wakes and posts: none lost, ordered per producer, and free of eventfd writes
//! while the reactor is busy.

mod common;

use std::future::poll_fn;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use ringhop_runtime as rt;

const THREADS: usize = 4;
const ROUNDS: u64 = 10_000;

/// Request/acknowledge counters between one remote thread and the reactor task.
struct Lane {
    requested: AtomicU64,
    acked: AtomicU64,
}

#[test]
fn remote_wakes_from_four_threads_are_never_lost() {
    let runtime = common::runtime(1);
    let lanes: Arc<Vec<Lane>> = Arc::new(
        (0..THREADS)
            .map(|_| Lane {
                requested: AtomicU64::new(0),
                acked: AtomicU64::new(0),
            })
            .collect(),
    );
    let (waker_tx, waker_rx) = mpsc::channel::<Waker>();
    let task_lanes = lanes.clone();
    // The task acknowledges every request it sees; it is only polled when woken, so a lost
    // wake leaves a thread waiting for its ack forever.
    let task = runtime.handles()[0].spawn(move || {
        let lanes = task_lanes;
        let mut sent_waker = false;
        poll_fn(move |cx| {
            if !sent_waker {
                waker_tx.send(cx.waker().clone()).unwrap();
                sent_waker = true;
            }
            let mut done = 0;
            for lane in lanes.iter() {
                let requested = lane.requested.load(Ordering::Acquire);
                lane.acked.store(requested, Ordering::Release);
                if requested == ROUNDS {
                    done += 1;
                }
            }
            if done == THREADS {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
    });
    let waker = waker_rx.recv().unwrap();
    let before = runtime.handles()[0].stats();
    let threads: Vec<_> = (0..THREADS)
        .map(|i| {
            let lanes = lanes.clone();
            let waker = waker.clone();
            std::thread::spawn(move || {
                let lane = &lanes[i];
                for round in 1..=ROUNDS {
                    lane.requested.store(round, Ordering::Release);
                    waker.wake_by_ref();
                    let deadline = Instant::now() + Duration::from_secs(10);
                    while lane.acked.load(Ordering::Acquire) < round {
                        assert!(
                            Instant::now() < deadline,
                            "wake {round} of thread {i} was lost"
                        );
                        std::hint::spin_loop();
                    }
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    runtime.block_on(task);
    let after = runtime.handles()[0].stats();
    assert_eq!(after.off_reactor_polls, 0);
    assert!(after.remote_wakes > before.remote_wakes);
    // A wake to a running reactor writes no eventfd: at most one write per park (plus one
    // for a park announced just before the `before` snapshot).
    assert!(after.eventfd_writes - before.eventfd_writes <= after.parks - before.parks + 1);
    // Over the reactor's whole life the bound is exact.
    assert!(after.eventfd_writes <= after.parks);
}

#[test]
fn remote_wakes_to_a_busy_reactor_write_almost_no_eventfd() {
    let runtime = common::runtime(1);
    let stop = Arc::new(AtomicBool::new(false));
    let spin_stop = stop.clone();
    // A task that keeps the reactor busy (always runnable) until told to stop.
    let spinner = runtime.handles()[0].spawn(move || async move {
        while !spin_stop.load(Ordering::Acquire) {
            rt::yield_now().await;
        }
    });
    let woken = Arc::new(AtomicU64::new(0));
    let task_woken = woken.clone();
    let (waker_tx, waker_rx) = mpsc::channel::<Waker>();
    let target = runtime.handles()[0].spawn(move || {
        poll_fn(move |cx| {
            let _ = waker_tx.send(cx.waker().clone());
            if task_woken.fetch_add(1, Ordering::AcqRel) >= 2_000 {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
    });
    let waker = waker_rx.recv().unwrap();
    let before = runtime.handles()[0].stats();
    let mut wakes = 0u64;
    let deadline = Instant::now() + Duration::from_secs(60);
    while !target.is_finished() {
        waker.wake_by_ref();
        wakes += 1;
        assert!(
            Instant::now() < deadline,
            "target never finished: {:?} polls of target {}",
            runtime.handles()[0].stats(),
            woken.load(Ordering::Relaxed)
        );
        if wakes % 64 == 0 {
            std::thread::yield_now();
        }
    }
    let after = runtime.handles()[0].stats();
    stop.store(true, Ordering::Release);
    runtime.block_on(spinner);
    runtime.block_on(target);
    let writes = after.eventfd_writes - before.eventfd_writes;
    let remote = after.remote_wakes - before.remote_wakes;
    assert!(
        remote >= 2_000,
        "only {remote} remote wakes reached the reactor"
    );
    assert!(
        writes <= 2,
        "{writes} eventfd writes for {remote} remote wakes to a busy reactor"
    );
}

#[test]
fn posts_run_in_order_per_producer() {
    const PRODUCERS: usize = 3;
    const POSTS: usize = 10_000;
    let runtime = common::runtime(1);
    let handle = runtime.handles()[0].clone();
    let seen: Arc<Mutex<Vec<Vec<usize>>>> = Arc::new(Mutex::new(vec![Vec::new(); PRODUCERS]));
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let handle = handle.clone();
            let seen = seen.clone();
            std::thread::spawn(move || {
                for n in 0..POSTS {
                    let seen = seen.clone();
                    let on_reactor = handle.clone();
                    handle
                        .post(move || {
                            assert!(on_reactor.is_current(), "post ran off its reactor");
                            seen.lock().unwrap()[p].push(n);
                        })
                        .unwrap();
                }
            })
        })
        .collect();
    for producer in producers {
        producer.join().unwrap();
    }
    assert!(common::eventually(Duration::from_secs(10), || seen
        .lock()
        .unwrap()
        .iter()
        .all(|v| v.len() == POSTS)));
    for (p, order) in seen.lock().unwrap().iter().enumerate() {
        assert!(
            order.iter().copied().eq(0..POSTS),
            "producer {p}'s posts ran out of order"
        );
    }
    assert!(!handle.is_current());
}

#[test]
fn post_never_runs_inline_even_on_its_own_reactor() {
    let runtime = common::runtime(1);
    let order = runtime.block_on_local(|| async {
        let order = Arc::new(Mutex::new(Vec::new()));
        let posted = order.clone();
        rt::current()
            .post(move || posted.lock().unwrap().push("posted"))
            .unwrap();
        order.lock().unwrap().push("caller");
        while order.lock().unwrap().len() < 2 {
            rt::yield_now().await;
        }
        let order = order.lock().unwrap().clone();
        order
    });
    assert_eq!(order, vec!["caller", "posted"]);
}

#[test]
fn the_off_reactor_counter_catches_a_hop() {
    let runtime = common::runtime(2);
    let task = runtime.handles()[0].spawn(std::future::pending::<()>);
    runtime.block_on(async {}); // let the task start
    assert_eq!(runtime.handles()[1].stats().off_reactor_polls, 0);
    task.debug_misroute_wake(&runtime.handles()[1]);
    assert!(
        common::eventually(Duration::from_secs(5), || runtime.handles()[1]
            .stats()
            .off_reactor_polls
            == 1),
        "a wake delivered to the wrong reactor went unnoticed"
    );
    // It was never polled there, and its owner still runs it.
    assert_eq!(runtime.handles()[0].stats().off_reactor_polls, 0);
    task.abort();
    assert!(runtime
        .block_on(task.try_join())
        .unwrap_err()
        .is_cancelled());
}
