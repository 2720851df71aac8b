//! Timers fire in deadline order, `timeout` cancels, and a busy reactor still fires them.

mod common;

use std::cell::RefCell;
use std::future::Future;
use std::rc::Rc;
use std::time::{Duration, Instant};

use ringhop_runtime::{self as rt, time};

#[test]
fn timers_fire_in_deadline_order() {
    let runtime = common::runtime(1);
    let order = runtime.block_on_local(|| async {
        let order = Rc::new(RefCell::new(Vec::new()));
        let start = Instant::now();
        let tasks: Vec<_> = [30u64, 10, 50, 20, 40, 0]
            .into_iter()
            .map(|ms| {
                let order = order.clone();
                rt::spawn_local(async move {
                    time::sleep_until(start + Duration::from_millis(ms)).await;
                    assert!(Instant::now() >= start + Duration::from_millis(ms));
                    order.borrow_mut().push(ms);
                })
            })
            .collect();
        for task in tasks {
            task.await;
        }
        let order = order.borrow().clone();
        order
    });
    assert_eq!(order, vec![0, 10, 20, 30, 40, 50]);
}

#[test]
fn timeout_cancels_the_inner_future() {
    let runtime = common::runtime(1);
    let (expired, finished, elapsed) = runtime.block_on_local(|| async {
        let start = Instant::now();
        let dropped = Rc::new(RefCell::new(false));
        struct Flag(Rc<RefCell<bool>>);
        impl Drop for Flag {
            fn drop(&mut self) {
                *self.0.borrow_mut() = true;
            }
        }
        let flag = Flag(dropped.clone());
        let expired = time::timeout(Duration::from_millis(20), async move {
            let _flag = flag;
            time::sleep(Duration::from_secs(3600)).await;
        })
        .await;
        let was_dropped = *dropped.borrow();
        let finished = time::timeout(Duration::from_secs(5), async { 7 }).await;
        (expired.is_err() && was_dropped, finished, start.elapsed())
    });
    assert!(expired, "timeout did not fire or did not drop its future");
    assert_eq!(finished, Ok(7));
    assert!(elapsed >= Duration::from_millis(20));
    assert!(elapsed < Duration::from_secs(5));
}

#[test]
fn timers_fire_while_the_reactor_is_busy() {
    let runtime = common::runtime(1);
    let spins = runtime.block_on_local(|| async {
        let done = Rc::new(RefCell::new(false));
        let flag = done.clone();
        rt::spawn_local(async move {
            time::sleep(Duration::from_millis(20)).await;
            *flag.borrow_mut() = true;
        });
        let mut spins = 0u64;
        while !*done.borrow() {
            spins += 1;
            assert!(spins < 50_000_000, "timer starved by a busy task");
            rt::yield_now().await;
        }
        spins
    });
    assert!(spins > 0);
}

#[test]
fn coarse_clock_advances() {
    let runtime = common::runtime(1);
    let advanced = runtime.block_on_local(|| async {
        let before = time::now();
        time::sleep(Duration::from_millis(5)).await;
        time::now() - before >= Duration::from_millis(5)
    });
    assert!(advanced);
}

/// Drives `future` on the calling plain thread (no reactor), parking between polls.
fn block_on_plain_thread<F: Future>(future: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl std::task::Wake for Unpark {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = std::task::Waker::from(std::sync::Arc::new(Unpark(std::thread::current())));
    let mut cx = std::task::Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let std::task::Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        std::thread::park();
    }
}

/// Arms a sleep on reactor 0 (first poll) and hands it out, not awaited on purpose.
#[allow(clippy::async_yields_async)]
fn armed_sleep(runtime: &rt::Runtime, duration: Duration) -> time::Sleep {
    runtime.block_on(runtime.handles()[0].spawn(move || async move {
        let mut sleep = time::sleep(duration);
        let armed = std::future::poll_fn(|cx| {
            assert!(std::pin::Pin::new(&mut sleep).poll(cx).is_pending());
            std::task::Poll::Ready(())
        });
        armed.await;
        sleep
    }))
}

#[test]
fn a_sleep_is_send_and_completes_when_awaited_on_another_thread() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<time::Sleep>();
    let runtime = common::runtime(1);
    let start = Instant::now();
    let sleep = armed_sleep(&runtime, Duration::from_millis(50));
    // Its reactor fires the timer and reports to this thread.
    std::thread::spawn(move || block_on_plain_thread(sleep))
        .join()
        .unwrap();
    let elapsed = start.elapsed();
    assert!(
        elapsed >= Duration::from_millis(50),
        "fired early: {elapsed:?}"
    );
    assert!(elapsed < Duration::from_secs(2), "fired late: {elapsed:?}");
}

#[test]
fn a_sleep_dropped_on_another_thread_removes_its_timer() {
    let runtime = common::runtime(1);
    let sleep = armed_sleep(&runtime, Duration::from_secs(3600));
    std::thread::spawn(move || drop(sleep)).join().unwrap();
    // The removal is posted to the reactor; after it ran, no timer is left to wait for.
    let next = runtime.block_on(runtime.handles()[0].spawn(|| async {
        rt::yield_now().await;
        time::debug_next_deadline()
    }));
    assert_eq!(next, None, "the dropped sleep's timer is still armed");
}

#[test]
fn a_timeout_of_duration_max_means_never_and_does_not_panic() {
    // `Duration::MAX` is how a caller says "no limit"; `Instant + Duration::MAX` panics, so
    // the deadline saturates (as tokio's does). A spin of `Duration::MAX` saturates too.
    let runtime = rt::Runtime::builder()
        .reactors(1)
        .pin_cores(false)
        .spin_before_park(Duration::MAX)
        .build()
        .expect("runtime");
    let (finished, raced) = runtime.block_on_local(|| async {
        let finished = time::timeout(Duration::MAX, time::sleep(Duration::from_millis(5))).await;
        let raced = time::timeout(Duration::from_millis(5), time::sleep(Duration::MAX)).await;
        (finished, raced)
    });
    assert!(finished.is_ok());
    assert!(raced.is_err());
}
