//! Owned-buffer ops: a dropped in-flight op keeps its buffer until the CQE and corrupts
//! nothing; a busy reactor still reaps completions (with and without DEFER_TASKRUN).
//!
//! `dropped_recv_keeps_its_buffer_until_the_cqe` is also the test to run under valgrind:
//! `valgrind --error-exitcode=1 target/debug/deps/io_ops-* dropped_recv`.

mod common;

use std::io::{Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ringhop_runtime::{self as rt, net::TcpListener, time, IoBuf, IoBufMut, Runtime};

/// A receive buffer that counts its drops.
struct TrackedBuf {
    bytes: Vec<u8>,
    drops: Arc<AtomicUsize>,
}

impl Drop for TrackedBuf {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::SeqCst);
    }
}

// SAFETY: delegates to the Vec, whose heap memory is stable.
unsafe impl IoBuf for TrackedBuf {
    fn stable_ptr(&self) -> *const u8 {
        self.bytes.stable_ptr()
    }
    fn bytes_init(&self) -> usize {
        self.bytes.bytes_init()
    }
}

// SAFETY: delegates to the Vec.
unsafe impl IoBufMut for TrackedBuf {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.bytes.stable_mut_ptr()
    }
    fn bytes_total(&mut self) -> usize {
        self.bytes.bytes_total()
    }
    unsafe fn set_init(&mut self, n: usize) {
        // SAFETY: forwarded contract.
        unsafe { self.bytes.set_init(n) }
    }
}

#[test]
fn dropped_recv_keeps_its_buffer_until_the_cqe() {
    let runtime = common::runtime(1);
    // io_uring: the kernel may write into the buffer until the cancelled recv's CQE, so the
    // op keeps it until then. epoll: nothing is in flight between polls, so it goes at once.
    let in_flight_until_cqe = runtime.driver() == rt::Driver::IoUring;
    let listener_addr = runtime.block_on_local(move || async move {
        let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        rt::spawn_local(async move {
            let stream = listener.accept().await.unwrap();
            let drops = Arc::new(AtomicUsize::new(0));
            for round in 0..200usize {
                let buf = TrackedBuf {
                    bytes: Vec::with_capacity(4096),
                    drops: drops.clone(),
                };
                // No data is coming: the recv is still in flight when the timeout drops it.
                let result = time::timeout(Duration::from_micros(200), stream.recv(buf)).await;
                assert!(result.is_err(), "nothing was sent, yet recv completed");
                if !in_flight_until_cqe {
                    assert_eq!(drops.load(Ordering::SeqCst), round + 1);
                    continue;
                }
                assert_eq!(
                    drops.load(Ordering::SeqCst),
                    round,
                    "buffer freed before its CQE"
                );
                // The cancel goes out with the next submit; its CQE releases the buffer.
                while drops.load(Ordering::SeqCst) == round {
                    rt::yield_now().await;
                }
            }
            // Tell the client we are ready, then receive what it sends: every byte arrives
            // in order, none swallowed by a cancelled recv.
            let (res, _) = stream.send_all(&b"ready"[..]).await;
            res.unwrap();
            let mut received = Vec::new();
            while received.len() < 1 << 16 {
                let (res, buf) = stream.recv(Vec::with_capacity(8192)).await;
                assert!(res.unwrap() > 0, "peer closed early");
                received.extend_from_slice(&buf);
            }
            let expected: Vec<u8> = (0..1u32 << 16).map(|i| (i % 251) as u8).collect();
            assert!(
                received == expected,
                "received bytes differ from sent bytes"
            );
            let (res, _) = stream.send_all(&b"ok"[..]).await;
            res.unwrap();
        });
        addr
    });
    let mut client = std::net::TcpStream::connect(listener_addr).unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut ready = [0u8; 5];
    client.read_exact(&mut ready).unwrap();
    let payload: Vec<u8> = (0..1u32 << 16).map(|i| (i % 251) as u8).collect();
    client.write_all(&payload).unwrap();
    let mut ok = [0u8; 2];
    client.read_exact(&mut ok).unwrap();
    assert_eq!(&ok, b"ok");
}

fn busy_reactor_reaps_completions(runtime: Runtime) {
    let addr = runtime.block_on_local(|| async {
        let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        rt::spawn_local(async move {
            let stream = listener.accept().await.unwrap();
            let done = std::rc::Rc::new(std::cell::Cell::new(false));
            let flag = done.clone();
            // A task that is always runnable: the reactor never parks while it spins.
            let spinner = rt::spawn_local(async move {
                let mut spins = 0u64;
                while !flag.get() {
                    spins += 1;
                    rt::yield_now().await;
                }
                spins
            });
            for _ in 0..100 {
                // The recv reaches the kernel before the client is told to send, so its data
                // always arrives as a completion the kernel defers until we enter the ring.
                let recv = stream.recv(Vec::with_capacity(64));
                let (res, _) = stream.send_all(&b"go"[..]).await;
                res.unwrap();
                let (res, buf) = recv.await;
                assert_eq!(res.unwrap(), 4);
                assert_eq!(buf, b"ping");
            }
            done.set(true);
            assert!(spinner.await > 0);
        });
        addr
    });
    let mut client = std::net::TcpStream::connect(addr).unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    for _ in 0..100 {
        let mut go = [0u8; 2];
        client
            .read_exact(&mut go)
            .expect("a busy reactor starved its own completions");
        assert_eq!(&go, b"go");
        client.write_all(b"ping").unwrap();
    }
    drop(client);
    drop(runtime);
}

#[test]
fn busy_reactor_reaps_completions_with_defer_taskrun() {
    let runtime = Runtime::builder()
        .reactors(1)
        .pin_cores(false)
        .defer_taskrun(true)
        .build()
        .unwrap();
    if runtime.driver() == rt::Driver::IoUring {
        assert!(runtime.handles()[0].ring_flags().defer_taskrun);
    }
    busy_reactor_reaps_completions(runtime);
}

#[test]
fn busy_reactor_reaps_completions_without_defer_taskrun() {
    let runtime = Runtime::builder()
        .reactors(1)
        .pin_cores(false)
        .defer_taskrun(false)
        .build()
        .unwrap();
    assert!(!runtime.handles()[0].ring_flags().defer_taskrun);
    busy_reactor_reaps_completions(runtime);
}
