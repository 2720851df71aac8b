//! `spawn_blocking`: work runs on pool threads, results come back to the awaiting task on its
//! own reactor, and a blocking job no longer stalls the reactor's other work.

mod common;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use ringhop_runtime::{self as rt, net::TcpListener, JoinError, Runtime};

#[test]
fn results_come_back_to_the_awaiting_task_on_its_own_reactor() {
    let runtime = common::runtime(2);
    let outputs = runtime.run(|| async {
        let me = rt::current().index();
        let reactor_thread = std::thread::current().id();
        let mut sum = 0u64;
        for i in 0..50u64 {
            let (value, pool_thread) =
                rt::spawn_blocking(move || (i * 2, std::thread::current().id())).await;
            assert_ne!(pool_thread, reactor_thread, "the job ran on the reactor");
            // The awaiting task resumed on its own reactor.
            assert_eq!(rt::current().index(), me);
            assert_eq!(std::thread::current().id(), reactor_thread);
            sum += value;
        }
        sum
    });
    assert_eq!(outputs, vec![2450, 2450]);
    for handle in runtime.handles() {
        let stats = handle.stats();
        assert_eq!(stats.off_reactor_polls, 0);
        // A job that finishes before its handle is first polled needs no wake at all.
        assert!(
            stats.remote_wakes > 0,
            "results arrive as remote wakes: {stats:?}"
        );
    }
}

#[test]
fn a_blocking_job_does_not_stall_the_reactors_connections() {
    let runtime = common::runtime(1);
    let addr = runtime.block_on_local(|| async {
        let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        rt::spawn_local(async move {
            loop {
                let stream = listener.accept().await.unwrap();
                rt::spawn_local(async move {
                    let (n, buf) = stream.recv(Vec::with_capacity(64)).await;
                    let n = n.unwrap();
                    if &buf[..n] == b"slow" {
                        // What a handler calling a blocking API does, done right.
                        rt::spawn_blocking(|| std::thread::sleep(Duration::from_millis(800))).await;
                    }
                    let (sent, _) = stream.send_all(buf[..n].to_vec()).await;
                    sent.unwrap();
                });
            }
        });
        addr
    });
    let mut slow = std::net::TcpStream::connect(addr).unwrap();
    slow.write_all(b"slow").unwrap();
    std::thread::sleep(Duration::from_millis(50));
    // While the slow request blocks a pool thread, the reactor answers others at once.
    for _ in 0..20 {
        let started = Instant::now();
        let mut fast = std::net::TcpStream::connect(addr).unwrap();
        fast.write_all(b"fast").unwrap();
        let mut reply = [0u8; 4];
        fast.read_exact(&mut reply).unwrap();
        assert_eq!(&reply, b"fast");
        assert!(
            started.elapsed() < Duration::from_millis(200),
            "a fast request waited {:?} behind a blocking job",
            started.elapsed()
        );
    }
    let mut reply = [0u8; 4];
    slow.read_exact(&mut reply).unwrap();
    assert_eq!(&reply, b"slow");
}

#[test]
fn a_panic_in_the_job_reaches_the_awaiting_task() {
    let runtime = common::runtime(1);
    let result = runtime.block_on_local(|| async {
        rt::spawn_blocking(|| -> u32 { panic!("boom") })
            .try_join()
            .await
    });
    match result {
        Err(JoinError::Panicked(payload)) => {
            assert_eq!(payload.downcast_ref::<&str>(), Some(&"boom"));
        }
        other => panic!("expected the job's panic, got {other:?}"),
    }
}

#[test]
fn the_pool_is_bounded_and_idle_threads_retire() {
    let runtime = Runtime::builder()
        .reactors(1)
        .pin_cores(false)
        .max_blocking_threads(2)
        .blocking_keep_alive(Duration::from_millis(100))
        .build()
        .unwrap();
    let started = Instant::now();
    runtime.block_on_local(|| async {
        let jobs: Vec<_> = (0..6)
            .map(|_| rt::spawn_blocking(|| std::thread::sleep(Duration::from_millis(100))))
            .collect();
        for job in jobs {
            job.await;
        }
    });
    // Six 100 ms jobs on at most two threads take at least three rounds.
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "ran more than two at once: {:?}",
        started.elapsed()
    );
    assert!(runtime.blocking_threads() <= 2);
    assert!(
        common::eventually(Duration::from_secs(3), || runtime.blocking_threads() == 0),
        "idle threads did not retire: {}",
        runtime.blocking_threads()
    );
}

#[test]
fn pool_threads_block_the_shutdown_signals() {
    let runtime = common::runtime(1);
    let blocked = runtime.block_on_local(|| async {
        rt::spawn_blocking(|| {
            let status = std::fs::read_to_string("/proc/thread-self/status").unwrap();
            let mask = status
                .lines()
                .find_map(|line| line.strip_prefix("SigBlk:"))
                .map(|hex| u64::from_str_radix(hex.trim(), 16).unwrap())
                .unwrap();
            let bit = |signal: i32| 1u64 << (signal - 1);
            mask & bit(libc::SIGINT) != 0 && mask & bit(libc::SIGTERM) != 0
        })
        .await
    });
    assert!(blocked, "a pool thread could take SIGINT/SIGTERM");
}

/// Jobs submitted while one pool thread idles each get a thread (up to the bound): a job
/// that waits for another must not queue behind it. The pool counted the thread it had
/// woken for the first job as still idle, so the second one only "woke" it again.
#[test]
fn a_job_submitted_while_the_idle_thread_wakes_gets_its_own_thread() {
    let runtime = common::runtime(1);
    runtime.block_on_local(|| async {
        for round in 0..20 {
            // One idle pool thread, waiting for work.
            rt::spawn_blocking(|| ()).await;
            std::thread::sleep(Duration::from_millis(5));
            let (tx, rx) = std::sync::mpsc::channel::<u8>();
            let waits = rt::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(3)));
            let sends = rt::spawn_blocking(move || tx.send(1));
            assert_eq!(
                waits.await,
                Ok(1),
                "round {round}: the second job never ran"
            );
            sends.await.unwrap();
        }
    });
}
