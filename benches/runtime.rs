//! Runtime benches, each next to tokio (current_thread + LocalSet) in the same run: local
//! spawn + run + join cost, and remote wake → poll latency with the reactor parked and busy.
//!
//! `cargo bench --bench runtime`

use std::future::poll_fn;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use ringhop::rt::{self, Runtime};

fn main() {
    // The reactor is pinned to the first allowed core; then the waking thread takes the last.
    // (In this order: the builder picks cores from the calling thread's affinity mask.)
    let mut builder = Runtime::builder();
    builder.reactors(1);
    // RINGHOP_DEFER_TASKRUN=0: compare the ring without DEFER_TASKRUN.
    if std::env::var("RINGHOP_DEFER_TASKRUN").as_deref() == Ok("0") {
        builder.defer_taskrun(false);
    }
    let runtime = builder.build().expect("runtime");
    if let Some(last) = core_affinity::get_core_ids().and_then(|ids| ids.last().copied()) {
        core_affinity::set_for_current(last);
    }
    let ringhop = spawn_run_join(&runtime);
    let tokio = tokio_spawn_run_join();
    println!(
        "spawn + run + join of an empty local task: ringhop {ringhop:?}, tokio {tokio:?} (ringhop/tokio {:.2})",
        ringhop.as_secs_f64() / tokio.as_secs_f64()
    );
    for producers in [1usize, 3] {
        let ringhop = post_throughput(&runtime, producers);
        let tokio = tokio_spawn_throughput(producers);
        println!(
            "post() throughput, {producers} producer(s): ringhop {:.2} M/s, tokio Handle::spawn {:.2} M/s (ringhop/tokio {:.2})",
            ringhop / 1e6,
            tokio / 1e6,
            ringhop / tokio
        );
    }
    for busy in [false, true] {
        let (r50, r99) = remote_wake_latency(Target::Ringhop(&runtime), busy);
        let (t50, t99) = remote_wake_latency(Target::Tokio, busy);
        println!(
            "remote wake -> poll ({}): ringhop p50 {r50:?} p99 {r99:?}; tokio p50 {t50:?} p99 {t99:?} (ringhop/tokio p50 {:.2}, p99 {:.2})",
            if busy { "reactor busy" } else { "reactor parked" },
            r50.as_secs_f64() / t50.as_secs_f64(),
            r99.as_secs_f64() / t99.as_secs_f64(),
        );
    }
}

const TASKS: u32 = 1_000_000;

fn tokio_spawn_run_join() -> Duration {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async {
        for _ in 0..10_000 {
            tokio::task::spawn_local(async {}).await.unwrap();
        }
        let start = Instant::now();
        for _ in 0..TASKS {
            tokio::task::spawn_local(async {}).await.unwrap();
        }
        start.elapsed() / TASKS
    })
}

enum Target<'a> {
    Ringhop(&'a Runtime),
    Tokio,
}

fn spawn_run_join(runtime: &Runtime) -> Duration {
    runtime.block_on_local(|| async {
        // Warm the slab and run queue.
        for _ in 0..10_000 {
            rt::spawn_local(async {}).await;
        }
        let start = Instant::now();
        for _ in 0..TASKS {
            rt::spawn_local(async {}).await;
        }
        start.elapsed() / TASKS
    })
}

/// A remote thread stamps the time and wakes a task; the task measures the delay when it is
/// polled. With `busy`, another task keeps the reactor running (no eventfd involved).
fn remote_wake_latency(target: Target<'_>, busy: bool) -> (Duration, Duration) {
    const SAMPLES: usize = 20_000;
    let base = Instant::now();
    let stamp = Arc::new(AtomicU64::new(0));
    let acked = Arc::new(AtomicU64::new(0));
    let (waker_tx, waker_rx) = mpsc::channel::<Waker>();
    let (samples_tx, samples_rx) = mpsc::channel::<Vec<u64>>();
    let (task_stamp, task_acked) = (stamp.clone(), acked.clone());
    let stop = Arc::new(AtomicU64::new(0));
    let spin_stop = stop.clone();
    let mut samples = Vec::with_capacity(SAMPLES);
    let mut sent = false;
    let probe = poll_fn(move |cx| {
        if !sent {
            waker_tx.send(cx.waker().clone()).unwrap();
            sent = true;
            return Poll::Pending;
        }
        let stamped = task_stamp.load(Ordering::Acquire);
        let now = base.elapsed().as_nanos() as u64;
        samples.push(now.saturating_sub(stamped));
        task_acked.fetch_add(1, Ordering::Release);
        if samples.len() == SAMPLES {
            samples_tx.send(std::mem::take(&mut samples)).unwrap();
            return Poll::Ready(());
        }
        Poll::Pending
    });
    let tokio_thread = match target {
        Target::Ringhop(runtime) => {
            if busy {
                drop(runtime.handles()[0].spawn(move || async move {
                    while spin_stop.load(Ordering::Relaxed) == 0 {
                        rt::yield_now().await;
                    }
                }));
            }
            drop(runtime.handles()[0].spawn(move || probe));
            None
        }
        Target::Tokio => Some(std::thread::spawn(move || {
            // The same core as the reactor: the first allowed one.
            if let Some(first) = core_affinity::get_core_ids().and_then(|ids| ids.first().copied())
            {
                core_affinity::set_for_current(first);
            }
            let rt = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            let local = tokio::task::LocalSet::new();
            local.block_on(&rt, async move {
                if busy {
                    tokio::task::spawn_local(async move {
                        while spin_stop.load(Ordering::Relaxed) == 0 {
                            tokio::task::yield_now().await;
                        }
                    });
                }
                probe.await;
            });
        })),
    };
    let waker = waker_rx.recv().unwrap();
    for i in 1..=SAMPLES as u64 {
        if !busy {
            // Let the reactor park, so the wake pays the eventfd path.
            std::thread::sleep(Duration::from_micros(20));
        }
        stamp.store(base.elapsed().as_nanos() as u64, Ordering::Release);
        waker.wake_by_ref();
        while acked.load(Ordering::Acquire) < i {
            std::hint::spin_loop();
        }
    }
    let mut samples = samples_rx.recv().unwrap();
    stop.store(1, Ordering::Relaxed);
    samples.sort_unstable();
    let pct = |p: f64| Duration::from_nanos(samples[((samples.len() - 1) as f64 * p) as usize]);
    if let Some(thread) = tokio_thread {
        thread.join().unwrap();
    }
    (pct(0.50), pct(0.99))
}

const POSTS: usize = 300_000;

/// Closures posted from `producers` threads, per second, until the reactor ran them all.
fn post_throughput(runtime: &Runtime, producers: usize) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let threads: Vec<_> = (0..producers)
        .map(|_| {
            let handle = runtime.handles()[0].clone();
            let done = done.clone();
            std::thread::spawn(move || {
                for _ in 0..POSTS {
                    let done = done.clone();
                    handle
                        .post(move || {
                            done.fetch_add(1, Ordering::Relaxed);
                        })
                        .unwrap();
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    while done.load(Ordering::Relaxed) < (POSTS * producers) as u64 {
        std::thread::yield_now();
    }
    (POSTS * producers) as f64 / start.elapsed().as_secs_f64()
}

/// The tokio counterpart: `Handle::spawn` of a trivial task onto a current_thread runtime
/// driven by its own thread.
fn tokio_spawn_throughput(producers: usize) -> f64 {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let handle = rt.handle().clone();
    let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
    let driver = std::thread::spawn(move || {
        if let Some(first) = core_affinity::get_core_ids().and_then(|ids| ids.first().copied()) {
            core_affinity::set_for_current(first);
        }
        rt.block_on(async move {
            while stop_rx.try_recv().is_err() {
                tokio::task::yield_now().await;
            }
        });
    });
    let done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let threads: Vec<_> = (0..producers)
        .map(|_| {
            let handle = handle.clone();
            let done = done.clone();
            std::thread::spawn(move || {
                for _ in 0..POSTS {
                    let done = done.clone();
                    drop(handle.spawn(async move {
                        done.fetch_add(1, Ordering::Relaxed);
                    }));
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    while done.load(Ordering::Relaxed) < (POSTS * producers) as u64 {
        std::thread::yield_now();
    }
    let rate = (POSTS * producers) as f64 / start.elapsed().as_secs_f64();
    stop_tx.send(()).unwrap();
    driver.join().unwrap();
    rate
}
