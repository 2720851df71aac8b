//! Quick runtime benches: local spawn+run+join cost, and remote wake → poll latency.
//!
//! `cargo bench --bench runtime`. The side-by-side comparison with tokio lives in a later
//! bench; this one gives the raw figures the runtime is tuned against.

use std::future::poll_fn;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use ringhop::rt::{self, Runtime};

fn main() {
    // The reactor is pinned to the first allowed core; then the waking thread takes the last.
    // (In this order: the builder picks cores from the calling thread's affinity mask.)
    let runtime = Runtime::builder().reactors(1).build().expect("runtime");
    if let Some(last) = core_affinity::get_core_ids().and_then(|ids| ids.last().copied()) {
        core_affinity::set_for_current(last);
    }
    spawn_run_join(&runtime);
    remote_wake_latency(&runtime, false);
    remote_wake_latency(&runtime, true);
}

fn spawn_run_join(runtime: &Runtime) {
    const TASKS: u32 = 1_000_000;
    let per_task = runtime.block_on_local(|| async {
        // Warm the slab and run queue.
        for _ in 0..10_000 {
            rt::spawn_local(async {}).await;
        }
        let start = Instant::now();
        for _ in 0..TASKS {
            rt::spawn_local(async {}).await;
        }
        start.elapsed() / TASKS
    });
    println!("spawn_local + run + join of an empty task: {per_task:?} per task");
}

/// A remote thread stamps the time and wakes a task; the task measures the delay when it is
/// polled. With `busy`, another task keeps the reactor running (no eventfd involved).
fn remote_wake_latency(runtime: &Runtime, busy: bool) {
    const SAMPLES: usize = 20_000;
    let base = Instant::now();
    let stamp = Arc::new(AtomicU64::new(0));
    let acked = Arc::new(AtomicU64::new(0));
    let (waker_tx, waker_rx) = mpsc::channel::<Waker>();
    let (samples_tx, samples_rx) = mpsc::channel::<Vec<u64>>();
    let (task_stamp, task_acked) = (stamp.clone(), acked.clone());
    let stop = Arc::new(AtomicU64::new(0));
    let spin_stop = stop.clone();
    if busy {
        drop(runtime.handles()[0].spawn(move || async move {
            while spin_stop.load(Ordering::Relaxed) == 0 {
                rt::yield_now().await;
            }
        }));
    }
    drop(runtime.handles()[0].spawn(move || {
        let mut samples = Vec::with_capacity(SAMPLES);
        let mut sent = false;
        poll_fn(move |cx| {
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
        })
    }));
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
    let stats = runtime.handles()[0].stats();
    println!(
        "remote wake -> poll ({}): p50 {:?}, p99 {:?} over {SAMPLES} wakes (eventfd writes so far: {})",
        if busy { "reactor busy" } else { "reactor parked" },
        pct(0.50),
        pct(0.99),
        stats.eventfd_writes,
    );
}
