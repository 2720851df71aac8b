//! Runtime benches, each next to tokio (current_thread + LocalSet) in the same run:
//! - spawn + run + join of an empty local task;
//! - local wake → poll (two tasks on one thread waking each other);
//! - remote wake → poll latency, p50 and p99, with the reactor parked and busy;
//! - `post()` throughput from 1 and 3 producer threads, against tokio's `Handle::spawn`.
//!
//! `cargo bench --bench runtime` (criterion; the ratios are printed at the end).
//! `RINGHOP_DEFER_TASKRUN=0` builds the ring without DEFER_TASKRUN, for comparison.

mod support;

use std::cell::Cell;
use std::future::{poll_fn, Future};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use ringhop::rt::{self, Runtime};
use support::{Summary, Tally};

fn main() {
    // The reactor is pinned to the first allowed core; then this (waking) thread takes the
    // last. In this order: the builder picks cores from the calling thread's affinity mask.
    let mut builder = Runtime::builder();
    builder.reactors(1);
    if std::env::var("RINGHOP_DEFER_TASKRUN").as_deref() == Ok("0") {
        builder.defer_taskrun(false);
    }
    let runtime = builder.build().expect("runtime");
    let spinning = builder
        .spin_before_park(Duration::from_micros(200))
        .build()
        .expect("runtime");
    support::pin_last();
    let mut c = support::criterion();
    let mut summary = Summary::default();
    spawn_run_join(&mut c, &runtime, &mut summary);
    local_wake(&mut c, &runtime, &mut summary);
    for state in [State::Parked, State::Spinning, State::Busy] {
        let runtime = if state == State::Spinning {
            &spinning
        } else {
            &runtime
        };
        remote_wake(&mut c, runtime, state, &mut summary);
    }
    drop(spinning);
    for producers in [1usize, 3] {
        post_throughput(&mut c, &runtime, producers, &mut summary);
    }
    c.final_summary();
    summary.print();
}

fn spawn_run_join(c: &mut Criterion, runtime: &Runtime, summary: &mut Summary) {
    let (mut ringhop, mut tokio) = (Tally::default(), Tally::default());
    let (tokio_rt, local) = support::tokio_local();
    let mut group = c.benchmark_group("spawn_run_join");
    group.bench_function("ringhop", |b| {
        b.iter_custom(|iters| {
            let elapsed = runtime.block_on_local(move || async move {
                let start = Instant::now();
                for _ in 0..iters {
                    rt::spawn_local(async {}).await;
                }
                start.elapsed()
            });
            ringhop.record(iters, elapsed)
        })
    });
    group.bench_function("tokio", |b| {
        b.iter_custom(|iters| {
            let elapsed = local.block_on(&tokio_rt, async move {
                let start = Instant::now();
                for _ in 0..iters {
                    tokio::task::spawn_local(async {}).await.unwrap();
                }
                start.elapsed()
            });
            tokio.record(iters, elapsed)
        })
    });
    group.finish();
    summary.versus(
        "spawn + run + join of an empty local task",
        &ringhop,
        &tokio,
    );
}

/// Two tasks on one thread hand a turn back and forth: each hop is one wake of the other
/// task and its poll, with nothing else runnable.
struct Rally {
    turn: Cell<u8>,
    hops_left: Cell<u64>,
    parked: [Cell<Option<Waker>>; 2],
}

fn player(rally: Rc<Rally>, me: u8) -> impl Future<Output = ()> {
    poll_fn(move |cx| loop {
        if rally.hops_left.get() == 0 {
            // Release the other player too.
            if let Some(other) = rally.parked[usize::from(1 - me)].take() {
                other.wake();
            }
            return Poll::Ready(());
        }
        if rally.turn.get() != me {
            rally.parked[usize::from(me)].set(Some(cx.waker().clone()));
            return Poll::Pending;
        }
        rally.turn.set(1 - me);
        rally.hops_left.set(rally.hops_left.get() - 1);
        if let Some(other) = rally.parked[usize::from(1 - me)].take() {
            other.wake();
        }
    })
}

fn rally(
    hops: u64,
) -> (
    Rc<Rally>,
    impl Future<Output = ()>,
    impl Future<Output = ()>,
) {
    let rally = Rc::new(Rally {
        turn: Cell::new(0),
        hops_left: Cell::new(hops),
        parked: [Cell::new(None), Cell::new(None)],
    });
    let (a, b) = (player(rally.clone(), 0), player(rally.clone(), 1));
    (rally, a, b)
}

fn local_wake(c: &mut Criterion, runtime: &Runtime, summary: &mut Summary) {
    let (mut ringhop, mut tokio) = (Tally::default(), Tally::default());
    let (tokio_rt, local) = support::tokio_local();
    let mut group = c.benchmark_group("local_wake_to_poll");
    group.bench_function("ringhop", |b| {
        b.iter_custom(|iters| {
            let elapsed = runtime.block_on_local(move || async move {
                let (_rally, a, b) = rally(iters);
                let start = Instant::now();
                let a = rt::spawn_local(a);
                let b = rt::spawn_local(b);
                a.await;
                b.await;
                start.elapsed()
            });
            ringhop.record(iters, elapsed)
        })
    });
    group.bench_function("tokio", |b| {
        b.iter_custom(|iters| {
            let elapsed = local.block_on(&tokio_rt, async move {
                let (_rally, a, b) = rally(iters);
                let start = Instant::now();
                let a = tokio::task::spawn_local(a);
                let b = tokio::task::spawn_local(b);
                a.await.unwrap();
                b.await.unwrap();
                start.elapsed()
            });
            tokio.record(iters, elapsed)
        })
    });
    group.finish();
    summary.versus("local wake -> poll", &ringhop, &tokio);
}

/// A task parked on another thread: the bench thread stamps the time and wakes it, the task
/// measures the delay when it is polled and acknowledges.
struct Probe {
    base: Instant,
    stamp: AtomicU64,
    latency: AtomicU64,
    acked: AtomicU64,
    stop: AtomicBool,
}

impl Probe {
    fn new() -> Arc<Self> {
        Arc::new(Probe {
            base: Instant::now(),
            stamp: AtomicU64::new(0),
            latency: AtomicU64::new(0),
            acked: AtomicU64::new(0),
            stop: AtomicBool::new(false),
        })
    }

    fn now(&self) -> u64 {
        self.base.elapsed().as_nanos() as u64
    }

    /// The task: hands its waker over once, then records one latency per poll.
    fn task(self: Arc<Self>, waker_tx: mpsc::Sender<Waker>) -> impl Future<Output = ()> {
        let mut sent = false;
        poll_fn(move |cx| {
            if !sent {
                waker_tx.send(cx.waker().clone()).unwrap();
                sent = true;
                return Poll::Pending;
            }
            if self.stop.load(Ordering::Acquire) {
                return Poll::Ready(());
            }
            let stamped = self.stamp.load(Ordering::Acquire);
            self.latency
                .store(self.now().saturating_sub(stamped), Ordering::Relaxed);
            self.acked.fetch_add(1, Ordering::Release);
            Poll::Pending
        })
    }

    /// Wakes the task `iters` times and returns the summed latencies.
    fn run(&self, waker: &Waker, iters: u64, parked: bool, tally: &mut Tally) -> Duration {
        let mut total = Duration::ZERO;
        for _ in 0..iters {
            if parked {
                // Let the reactor park, so the wake pays the eventfd path.
                std::thread::sleep(Duration::from_micros(20));
            }
            let acked = self.acked.load(Ordering::Acquire);
            self.stamp.store(self.now(), Ordering::Release);
            waker.wake_by_ref();
            while self.acked.load(Ordering::Acquire) == acked {
                std::hint::spin_loop();
            }
            let latency = Duration::from_nanos(self.latency.load(Ordering::Relaxed));
            tally.latency(latency);
            total += latency;
        }
        total
    }
}

/// The same yield for both runtimes: wake at once and return `Pending` once. (tokio's own
/// `yield_now` defers the wake to its driver, and with it a LocalSet took milliseconds to
/// notice a remote wake.)
fn yield_once() -> impl Future<Output = ()> {
    let mut yielded = false;
    poll_fn(move |cx| {
        if yielded {
            return Poll::Ready(());
        }
        yielded = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    })
}

/// Keeps a reactor busy without ever parking (the wake then needs no eventfd).
async fn spin_until(stop: Arc<Probe>) {
    while !stop.stop.load(Ordering::Relaxed) {
        yield_once().await;
    }
}

/// What the woken task's thread does between wakes.
#[derive(Clone, Copy, PartialEq, Debug)]
enum State {
    /// Idle: parked in the kernel (tokio: in epoll_wait).
    Parked,
    /// Idle, but the reactor was built with `spin_before_park(200 µs)`: longer than the gap
    /// between wakes (a 20 µs sleep takes up to ~70 µs with the default timer slack). tokio
    /// has no such setting and parks.
    Spinning,
    /// Another task keeps the thread running (no eventfd involved).
    Busy,
}

fn remote_wake(c: &mut Criterion, runtime: &Runtime, state: State, summary: &mut Summary) {
    let (mut ringhop, mut tokio) = (Tally::default(), Tally::default());
    let busy = state == State::Busy;
    let state = match state {
        State::Parked => "parked",
        State::Spinning => "idle, ringhop spin_before_park(200us)",
        State::Busy => "busy",
    };
    let group_name = state.split(',').next().unwrap_or(state).replace(' ', "_");
    let mut group = c.benchmark_group(format!("remote_wake_to_poll/{group_name}"));

    let probe = Probe::new();
    let (waker_tx, waker_rx) = mpsc::channel();
    if busy {
        let spinner = probe.clone();
        drop(runtime.handles()[0].spawn(move || spin_until(spinner)));
    }
    let task = runtime.handles()[0].spawn({
        let probe = probe.clone();
        move || probe.task(waker_tx)
    });
    let waker = waker_rx.recv().unwrap();
    group.bench_function("ringhop", |b| {
        b.iter_custom(|iters| {
            let total = probe.run(&waker, iters, !busy, &mut ringhop);
            ringhop.record(iters, total)
        })
    });
    probe.stop.store(true, Ordering::Release);
    waker.wake();
    runtime.block_on(task);

    let probe = Probe::new();
    let (waker_tx, waker_rx) = mpsc::channel();
    let thread = std::thread::spawn({
        let probe = probe.clone();
        move || {
            support::pin_first();
            let (rt, local) = support::tokio_local();
            local.block_on(&rt, async move {
                if busy {
                    let spinner = probe.clone();
                    tokio::task::spawn_local(async move {
                        while !spinner.stop.load(Ordering::Relaxed) {
                            yield_once().await;
                        }
                    });
                }
                // A spawned task, as on the ringhop side (not the block_on future itself).
                tokio::task::spawn_local(probe.task(waker_tx))
                    .await
                    .unwrap();
            });
        }
    });
    let waker = waker_rx.recv().unwrap();
    group.bench_function("tokio", |b| {
        b.iter_custom(|iters| {
            let total = probe.run(&waker, iters, !busy, &mut tokio);
            tokio.record(iters, total)
        })
    });
    probe.stop.store(true, Ordering::Release);
    waker.wake();
    thread.join().unwrap();
    group.finish();

    if let (Some(r50), Some(r99), Some(t50), Some(t99)) = (
        ringhop.percentile(0.50),
        ringhop.percentile(0.99),
        tokio.percentile(0.50),
        tokio.percentile(0.99),
    ) {
        summary.add(format!(
            "remote wake -> poll (reactor {state}): ringhop p50 {r50:?} p99 {r99:?}; tokio p50 {t50:?} p99 {t99:?} (ringhop/tokio p50 {:.2}, p99 {:.2})",
            r50.as_secs_f64() / t50.as_secs_f64(),
            r99.as_secs_f64() / t99.as_secs_f64(),
        ));
    }
}

/// Runs about `iters` closures split over `producers` threads through `submit`; returns how
/// many and the time until `done` counted them all.
fn produce(
    producers: usize,
    iters: u64,
    done: &Arc<AtomicU64>,
    submit: impl Fn(Arc<AtomicU64>) + Clone + Send + 'static,
) -> (u64, Duration) {
    let before = done.load(Ordering::Acquire);
    let per_thread = iters.div_ceil(producers as u64);
    let start = Instant::now();
    let threads: Vec<_> = (0..producers)
        .map(|_| {
            let (submit, done) = (submit.clone(), done.clone());
            std::thread::spawn(move || {
                for _ in 0..per_thread {
                    submit(done.clone());
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let target = before + per_thread * producers as u64;
    while done.load(Ordering::Acquire) < target {
        std::hint::spin_loop();
    }
    (per_thread * producers as u64, start.elapsed())
}

fn post_throughput(c: &mut Criterion, runtime: &Runtime, producers: usize, summary: &mut Summary) {
    let (mut ringhop, mut tokio) = (Tally::default(), Tally::default());
    let mut group = c.benchmark_group(format!("post/{producers}_producers"));
    group.throughput(Throughput::Elements(1));
    let done = Arc::new(AtomicU64::new(0));
    let handle = runtime.handles()[0].clone();
    group.bench_function("ringhop", |b| {
        b.iter_custom(|iters| {
            let handle = handle.clone();
            let run = produce(producers, iters, &done, move |done| {
                handle
                    .post(move || {
                        done.fetch_add(1, Ordering::Release);
                    })
                    .unwrap();
            });
            ringhop.record_rounded(iters, run.0, run.1)
        })
    });

    // tokio: Handle::spawn of a trivial task onto a current_thread runtime driven by its
    // own thread on the reactor's core.
    let (stop_tx, stop_rx) = mpsc::channel::<()>();
    let (handle_tx, handle_rx) = mpsc::channel();
    let driver = std::thread::spawn(move || {
        support::pin_first();
        let (rt, _) = support::tokio_local();
        handle_tx.send(rt.handle().clone()).unwrap();
        rt.block_on(async move {
            while stop_rx.try_recv().is_err() {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        });
    });
    let handle = handle_rx.recv().unwrap();
    group.bench_function("tokio", |b| {
        b.iter_custom(|iters| {
            let handle = handle.clone();
            let run = produce(producers, iters, &done, move |done| {
                drop(handle.spawn(async move {
                    done.fetch_add(1, Ordering::Release);
                }));
            });
            tokio.record_rounded(iters, run.0, run.1)
        })
    });
    group.finish();
    stop_tx.send(()).unwrap();
    driver.join().unwrap();
    if let (Some(r), Some(t)) = (ringhop.per_iter(), tokio.per_iter()) {
        summary.add(format!(
            "post() throughput, {producers} producer(s): ringhop {:.2} M/s, tokio Handle::spawn {:.2} M/s (ringhop/tokio {:.2})",
            1e-6 / r.as_secs_f64(),
            1e-6 / t.as_secs_f64(),
            t.as_secs_f64() / r.as_secs_f64()
        ));
    }
}
