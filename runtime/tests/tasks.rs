//! Task lifecycle: join, panic isolation, abort, yield, handles across threads.

mod common;

use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ringhop_runtime::{self as rt, time, JoinError};

/// Counts its drops, to prove futures and outputs are dropped exactly once.
struct DropCounter(Arc<AtomicUsize>);

impl Drop for DropCounter {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn spawn_local_runs_not_send_futures_and_joins() {
    let runtime = common::runtime(1);
    let sum = runtime.block_on_local(|| async {
        let shared = Rc::new(Cell::new(0));
        let tasks: Vec<_> = (1..=100)
            .map(|i| {
                let shared = shared.clone();
                rt::spawn_local(async move {
                    rt::yield_now().await;
                    shared.set(shared.get() + i);
                    i
                })
            })
            .collect();
        let mut joined = 0;
        for task in tasks {
            joined += task.await;
        }
        assert_eq!(shared.get(), 5050);
        joined
    });
    assert_eq!(sum, 5050);
}

#[test]
fn a_panicking_task_is_reported_and_the_reactor_keeps_running() {
    let runtime = common::runtime(1);
    let (err, after) = runtime.block_on_local(|| async {
        let failed = rt::spawn_local(async { panic!("boom") }).try_join().await;
        let after = rt::spawn_local(async { 5 }).await;
        (failed.unwrap_err().to_string(), after)
    });
    assert_eq!(err, "task panicked: boom");
    assert_eq!(after, 5);
    // Awaiting the JoinHandle directly re-raises the panic in the awaiting task.
    let reraised = runtime
        .block_on_local(|| async {
            rt::spawn_local(async {
                rt::spawn_local(async { panic!("inner") }).await;
            })
            .try_join()
            .await
        })
        .unwrap_err();
    assert!(reraised.is_panic());
    assert_eq!(reraised.to_string(), "task panicked: inner");
    assert_eq!(runtime.block_on(async { 1 + 1 }), 2);
}

#[test]
fn abort_drops_the_future_and_reports_cancelled() {
    let runtime = common::runtime(1);
    let drops = Arc::new(AtomicUsize::new(0));
    let guard = DropCounter(drops.clone());
    let task = runtime.handles()[0].spawn(move || async move {
        let _guard = guard;
        time::sleep(Duration::from_secs(3600)).await;
    });
    // Abort from a foreign thread while the task sleeps.
    std::thread::sleep(Duration::from_millis(10));
    task.abort();
    let result = runtime.block_on(task.try_join());
    assert!(matches!(result, Err(JoinError::Cancelled)));
    assert_eq!(drops.load(Ordering::SeqCst), 1);
}

#[test]
fn detached_task_output_is_dropped_once() {
    let runtime = common::runtime(1);
    let drops = Arc::new(AtomicUsize::new(0));
    let output_drops = drops.clone();
    runtime.block_on_local(move || async move {
        let task = rt::spawn_local(async move { DropCounter(output_drops) });
        drop(task);
        rt::yield_now().await;
        rt::yield_now().await;
    });
    assert_eq!(drops.load(Ordering::SeqCst), 1);
}

/// A detached task's output is dropped on the reactor when the task ends: a panic in its
/// `Drop` is that task's failure, and the reactor keeps serving (it unwound out of the
/// reactor thread, and every later `block_on` on it hung).
#[test]
fn a_detached_output_that_panics_when_dropped_does_not_take_the_reactor_down() {
    struct PanicsOnDrop;
    impl Drop for PanicsOnDrop {
        fn drop(&mut self) {
            panic!("output dropped");
        }
    }
    // On a thread of its own, so that a reactor that died fails the test instead of
    // hanging it.
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = common::runtime(1);
        runtime.block_on_local(|| async {
            drop(rt::spawn_local(async { PanicsOnDrop }));
            rt::yield_now().await;
            rt::yield_now().await;
        });
        let _ = sender.send(runtime.block_on(async { 7 }));
    });
    assert_eq!(
        receiver.recv_timeout(Duration::from_secs(5)),
        Ok(7),
        "the reactor no longer runs tasks"
    );
}

#[test]
fn handle_spawn_from_any_thread_and_is_current() {
    let runtime = common::runtime(2);
    let handles = runtime.handles().to_vec();
    let results: Vec<(usize, bool, bool)> = std::thread::scope(|scope| {
        handles
            .iter()
            .map(|handle| {
                let target = handle.clone();
                let other = handles[(handle.index() + 1) % handles.len()].clone();
                scope.spawn(move || {
                    let task = target.spawn(move || async move {
                        let here = rt::current();
                        (here.index(), here.is_current(), other.is_current())
                    });
                    runtime_block(task)
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|t| t.join().unwrap())
            .collect()
    });
    assert_eq!(results, vec![(0, true, false), (1, true, false)]);
    assert!(rt::try_current().is_none());
}

/// Blocks a plain thread on a JoinHandle without a runtime of its own.
fn runtime_block<T: Send + 'static>(task: rt::JoinHandle<T>) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    let waker = Arc::new(Waker(std::thread::current(), tx));
    let waker = std::task::Waker::from(waker);
    let mut cx = std::task::Context::from_waker(&waker);
    let mut task = std::pin::pin!(task);
    loop {
        if let std::task::Poll::Ready(v) = task.as_mut().poll(&mut cx) {
            return v;
        }
        let _ = rx.recv_timeout(Duration::from_millis(50));
    }
}

struct Waker(std::thread::Thread, std::sync::mpsc::Sender<()>);

impl std::task::Wake for Waker {
    fn wake(self: Arc<Self>) {
        let _ = self.1.send(());
        self.0.unpark();
    }
}

use std::future::Future;

#[test]
fn spawn_to_a_shut_down_reactor_is_cancelled() {
    let runtime = common::runtime(1);
    let handle = runtime.handles()[0].clone();
    drop(runtime);
    let task = handle.spawn(|| async { 1 });
    assert!(task.is_finished());
    assert!(handle.post(|| {}).is_err());
    let result = runtime_block_try(task);
    assert!(matches!(result, Err(JoinError::Cancelled)));
}

fn runtime_block_try<T: Send + 'static>(task: rt::JoinHandle<T>) -> Result<T, JoinError> {
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    let mut join = std::pin::pin!(task.try_join());
    match join.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(result) => result,
        std::task::Poll::Pending => panic!("a finished task's join was pending"),
    }
}

#[test]
fn dropping_the_runtime_cancels_running_tasks() {
    let runtime = common::runtime(2);
    let drops = Arc::new(AtomicUsize::new(0));
    for handle in runtime.handles() {
        let guard = DropCounter(drops.clone());
        drop(handle.spawn(move || async move {
            let _guard = guard;
            std::future::pending::<()>().await;
        }));
    }
    drop(runtime);
    assert_eq!(drops.load(Ordering::SeqCst), 2);
}

#[test]
fn run_starts_the_factory_on_every_reactor() {
    let runtime = common::runtime(2);
    let indexes = runtime.run(|| async {
        let local = Rc::new(rt::current().index());
        rt::yield_now().await;
        *local
    });
    assert_eq!(indexes, vec![0, 1]);
}
