//! The pumps over real sockets: exact echo of 1 B to 8 MiB messages split anywhere,
//! backpressure that reaches TCP, many connections on several reactors, and no leaks.

mod common;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ringhop_pipes::{connect, live_segments, DuplexPipe, SegmentPool};
use ringhop_runtime::{self as rt, net::TcpListener, Runtime};

/// `live_segments()` is process-wide: tests in this file run one at a time so each one's
/// segment count is its own.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn runtime(reactors: usize) -> Runtime {
    Runtime::builder()
        .reactors(reactors)
        .pin_cores(false)
        .build()
        .unwrap()
}

/// Echoes everything through the application end of the pipe.
async fn echo(mut pipe: DuplexPipe) {
    loop {
        let Ok(result) = pipe.input.read().await else {
            return;
        };
        let len = result.len();
        let completed = result.is_completed();
        for chunk in result.chunks() {
            pipe.output.write(chunk);
        }
        pipe.input.advance_to(len, len).unwrap();
        if pipe.output.flush().await.is_err() || completed {
            pipe.output.complete(None);
            return;
        }
    }
}

fn start_echo_servers(runtime: &Runtime, accepted: Arc<AtomicUsize>) -> SocketAddr {
    // A free port, from a plain socket closed at once (never a listener that lingers beside
    // the real ones: connections routed to it would be reset when it closes).
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    for handle in runtime.handles() {
        let accepted = accepted.clone();
        runtime.block_on(handle.spawn(move || async move {
            let listener = TcpListener::bind(addr).unwrap();
            rt::spawn_local(async move {
                while let Ok(stream) = listener.accept().await {
                    accepted.fetch_add(1, Ordering::Relaxed);
                    rt::spawn_local(echo(connect(stream).unwrap()));
                }
            });
        }));
    }
    addr
}

/// A small deterministic generator for message sizes and split points.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, bound: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) as usize) % bound.max(1)
    }
}

#[test]
fn echo_of_1_byte_to_8_mib_split_at_random_boundaries() {
    let _serial = serial();
    let runtime = runtime(1);
    let addr = start_echo_servers(&runtime, Arc::new(AtomicUsize::new(0)));
    let mut rng = Lcg(42);
    for &size in &[1usize, 2, 100, 4095, 4096, 4097, 65_536, 1 << 20, 8 << 20] {
        let message: Vec<u8> = (0..size).map(|i| (i * 7 % 256) as u8).collect();
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let reader = {
            let mut stream = stream.try_clone().unwrap();
            std::thread::spawn(move || {
                let mut echoed = Vec::with_capacity(size);
                stream.read_to_end(&mut echoed).unwrap();
                echoed
            })
        };
        let mut sent = 0;
        while sent < size {
            let piece = 1 + rng.next((size - sent).min(100_000));
            stream.write_all(&message[sent..sent + piece]).unwrap();
            sent += piece;
        }
        stream.shutdown(std::net::Shutdown::Write).unwrap();
        let echoed = reader.join().unwrap();
        assert_eq!(
            echoed.len(),
            size,
            "echo of {size} bytes came back with {} bytes",
            echoed.len()
        );
        assert!(echoed == message, "echo of {size} bytes differs");
    }
}

/// Asserts a per-operation count against its bound under (io_uring, epoll).
fn at_most(runtime: &rt::Runtime, measured: f64, bounds: (f64, f64), what: &str) {
    let most = match runtime.driver() {
        rt::Driver::IoUring => bounds.0,
        _ => bounds.1,
    };
    assert!(
        measured <= most + 0.1,
        "{measured:.2} {what} (at most {most} expected on {:?})",
        runtime.driver()
    );
}

/// The request path's shape: on both drivers a round trip (bytes in, echo out) costs one task
/// poll, the application's — neither pump is polled — and 8 pipe locks.
#[test]
fn a_round_trip_polls_only_the_application_and_takes_8_locks() {
    let _serial = serial();
    let runtime = runtime(1);
    let addr = start_echo_servers(&runtime, Arc::new(AtomicUsize::new(0)));
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream.set_nodelay(true).unwrap();
    let mut buf = [0u8; 64];
    // Warm up (accept, first arm).
    stream.write_all(b"x").unwrap();
    stream.read_exact(&mut buf[..1]).unwrap();
    const ROUND_TRIPS: u64 = 200;
    let handle = &runtime.handles()[0];
    let locks = || runtime.block_on(handle.spawn(|| async { ringhop_pipes::lock_acquisitions() }));
    let locks_before = locks();
    let before = runtime.handles()[0].stats().polls;
    for i in 0..ROUND_TRIPS {
        let message = [i as u8; 64];
        stream.write_all(&message).unwrap();
        stream.read_exact(&mut buf).unwrap();
        assert_eq!(buf, message);
    }
    let polls = runtime.handles()[0].stats().polls - before;
    let locks_per_round_trip = (locks() - locks_before) as f64 / ROUND_TRIPS as f64;
    // The echo's read (waiting, then woken), write, advance and flush; the receive side's
    // write, commit and flush under one lock; the send side's advance together with its
    // next read. epoll the same: the driver receives for the pump's consumer at the edge.
    at_most(
        &runtime,
        locks_per_round_trip,
        (8.0, 8.0),
        "pipe locks per round trip",
    );
    let per_round_trip = polls as f64 / ROUND_TRIPS as f64;
    // io_uring: the application once — received bytes reach the pipe from their CQE, its
    // flush queues the send for right before the reactor submits, and the send's CQE
    // advances the pipe (4 polls before the pumps ran on completions). epoll: the same, the
    // driver receiving for the pump at each readable edge (2 polls before: the receive pump
    // was polled per edge).
    at_most(
        &runtime,
        per_round_trip,
        (1.0, 1.0),
        "task polls per round trip",
    );
}

/// Responses flushed one by one within one poll of the application go out together: the
/// connection sends right before the reactor submits, everything flushed by then (one
/// `send`/SQE for the batch, not one per flush — under epoll a send per flush collapsed
/// pipelined hyper to a third of its throughput).
#[test]
fn responses_flushed_in_one_poll_go_out_in_one_send() {
    let _serial = serial();
    let runtime = runtime(1);
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    runtime.block_on(runtime.handles()[0].spawn(move || async move {
        let listener = TcpListener::bind(addr).unwrap();
        rt::spawn_local(async move {
            while let Ok(stream) = listener.accept().await {
                let mut pipe = connect(stream).unwrap();
                rt::spawn_local(async move {
                    // For every byte received, 16 answers, each flushed on its own.
                    while let Ok(result) = pipe.input.read().await {
                        let len = result.len();
                        let done = result.is_completed();
                        pipe.input.advance_to(len, len).unwrap();
                        for _ in 0..len * 16 {
                            pipe.output.write(b"answer\n");
                            if pipe.output.flush().await.is_err() {
                                return;
                            }
                        }
                        if done {
                            return;
                        }
                    }
                });
            }
        });
    }));
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    let mut answers = [0u8; 16 * 7];
    stream.write_all(b"x").unwrap();
    stream.read_exact(&mut answers).unwrap();
    const BATCHES: u64 = 50;
    let before = runtime.handles()[0].stats().submissions;
    for _ in 0..BATCHES {
        stream.write_all(b"x").unwrap();
        stream.read_exact(&mut answers).unwrap();
        assert!(answers.chunks(7).all(|answer| answer == b"answer\n"));
    }
    let per_batch = (runtime.handles()[0].stats().submissions - before) as f64 / BATCHES as f64;
    // io_uring: one send SQE per batch. epoll: one recv and one send syscall per batch.
    at_most(
        &runtime,
        per_batch,
        (1.0, 2.0),
        "submissions per batch of 16 flushed answers",
    );
}

#[test]
fn many_connections_on_several_reactors_leak_nothing() {
    let _serial = serial();
    let runtime = runtime(2);
    let fds_before = std::fs::read_dir("/proc/self/fd").unwrap().count();
    let accepted = Arc::new(AtomicUsize::new(0));
    let addr = start_echo_servers(&runtime, accepted.clone());
    // What stays: one accept loop per reactor.
    let tasks_before = runtime.handles().len() as u64;
    let clients: Vec<_> = (0..8)
        .map(|t| {
            std::thread::spawn(move || {
                for c in 0..25 {
                    let mut stream = std::net::TcpStream::connect(addr).unwrap();
                    stream
                        .set_read_timeout(Some(Duration::from_secs(10)))
                        .unwrap();
                    let message = format!("{t}:{c}:").repeat(50 + c * 40);
                    stream.write_all(message.as_bytes()).unwrap();
                    let mut echoed = vec![0; message.len()];
                    stream.read_exact(&mut echoed).unwrap();
                    assert_eq!(echoed, message.as_bytes());
                }
            })
        })
        .collect();
    for client in clients {
        client.join().unwrap();
    }
    assert_eq!(accepted.load(Ordering::Relaxed), 200);
    // Every connection's pumps and echo task end, every socket closes, and every segment is
    // back in its reactor's pool.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let tasks: u64 = runtime.handles().iter().map(|h| h.stats().live_tasks).sum();
        let fds = std::fs::read_dir("/proc/self/fd").unwrap().count();
        let pooled: usize = runtime
            .handles()
            .iter()
            .map(|h| runtime.block_on(h.spawn(|| async { SegmentPool::current().idle() })))
            .sum();
        if tasks == tasks_before && fds <= fds_before + 2 && live_segments() == pooled {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "leak: tasks {tasks} (was {tasks_before}), fds {fds} (was {fds_before} + 2 \
             listeners), segments {} live vs {pooled} pooled",
            live_segments()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    for handle in runtime.handles() {
        assert_eq!(handle.stats().off_reactor_polls, 0);
    }
}

#[test]
fn a_slow_reader_pushes_back_on_the_peer() {
    let _serial = serial();
    let runtime = runtime(1);
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let go_rx = Arc::new(std::sync::Mutex::new(go_rx));
    let max_buffered = Arc::new(AtomicUsize::new(0));
    let max_seen = max_buffered.clone();
    let server = runtime.handles()[0].spawn(move || async move {
        let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        addr_tx.send(listener.local_addr().unwrap()).unwrap();
        let mut pipe = connect(listener.accept().await.unwrap()).unwrap();
        // Do not read until told to: the inbound pipe fills to its pause threshold.
        while go_rx.lock().unwrap().try_recv().is_err() {
            max_seen.fetch_max(pipe.input.buffered().0, Ordering::Relaxed);
            ringhop_runtime::time::sleep(Duration::from_millis(5)).await;
        }
        let mut total = 0usize;
        loop {
            let result = pipe.input.read().await.unwrap();
            let len = result.len();
            max_seen.fetch_max(len, Ordering::Relaxed);
            let done = result.is_completed();
            pipe.input.advance_to(len, len).unwrap();
            total += len;
            if done {
                return total;
            }
        }
    });
    let addr = addr_rx.recv().unwrap();
    const TOTAL: usize = 64 << 20;
    let sent = Arc::new(AtomicUsize::new(0));
    let sender = {
        let sent = sent.clone();
        std::thread::spawn(move || {
            let mut stream = std::net::TcpStream::connect(addr).unwrap();
            let chunk = vec![1u8; 64 * 1024];
            while sent.load(Ordering::Relaxed) < TOTAL {
                stream.write_all(&chunk).unwrap();
                sent.fetch_add(chunk.len(), Ordering::Relaxed);
            }
        })
    };
    // The sender stalls: what it got out is bounded by the pipe and the socket buffers.
    let mut last = 0;
    let mut stable_for = 0;
    while stable_for < 20 {
        std::thread::sleep(Duration::from_millis(10));
        let now = sent.load(Ordering::Relaxed);
        stable_for = if now == last { stable_for + 1 } else { 0 };
        last = now;
    }
    assert!(
        last < TOTAL / 2,
        "the peer was never pushed back ({last} bytes sent)"
    );
    let buffered = max_buffered.load(Ordering::Relaxed);
    println!("sender stalled after {last} bytes; inbound pipe peaked at {buffered} bytes");
    // Pause threshold (1 MiB) plus what arrives while the receive stops: the batch stops
    // at the threshold, and under io_uring the completions already on their way still come.
    assert!(
        buffered <= (1 << 20) + (1 << 18),
        "inbound pipe grew to {buffered} bytes"
    );
    go_tx.send(()).unwrap();
    sender.join().unwrap();
    assert_eq!(runtime.block_on(server), TOTAL);
}

#[test]
fn aborting_a_transport_frees_tasks_segments_and_the_socket() {
    let _serial = serial();
    let runtime = runtime(1);
    let fds_before = std::fs::read_dir("/proc/self/fd").unwrap().count();
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let server = runtime.handles()[0].spawn(move || async move {
        let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        addr_tx.send(listener.local_addr().unwrap()).unwrap();
        let stream = listener.accept().await.unwrap();
        drop(listener);
        let mut transport =
            ringhop_pipes::Transport::start(stream, ringhop_pipes::TransportOptions::default())
                .unwrap();
        // Take some bytes in, leave a response half-written, then abort mid-connection.
        let result = transport.pipe.input.read().await.unwrap();
        let len = result.len();
        transport.pipe.input.advance_to(0, len).unwrap();
        transport.pipe.output.write(&[9u8; 100_000]);
        transport.abort();
        let recv = transport.recv_pump.try_join().await;
        let send = transport.send_pump.try_join().await;
        assert!(recv.unwrap_err().is_cancelled());
        assert!(send.unwrap_err().is_cancelled());
        drop(transport.pipe);
        len
    });
    let addr = addr_rx.recv().unwrap();
    let mut client = std::net::TcpStream::connect(addr).unwrap();
    client.write_all(b"hello").unwrap();
    assert_eq!(runtime.block_on(server), 5);
    // The peer sees the connection end.
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut rest = Vec::new();
    let _ = client.read_to_end(&mut rest);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let fds = std::fs::read_dir("/proc/self/fd").unwrap().count();
        let tasks = runtime.handles()[0].stats().live_tasks;
        let pooled = runtime
            .block_on(runtime.handles()[0].spawn(|| async { SegmentPool::current().idle() }));
        // One more fd: the client socket this test still holds.
        if tasks == 0 && fds <= fds_before + 1 && live_segments() == pooled {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "leak after abort: tasks {tasks}, fds {fds} (was {fds_before}), segments {} live vs {pooled} pooled",
            live_segments()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn bytes_received_just_before_a_reset_reach_the_reader_before_the_error() {
    let _serial = serial();
    runtime(1).block_on_local(|| async {
        let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let client = rt::net::TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let mut pipe = connect(listener.accept().await.unwrap()).unwrap();
        let (sent, _) = client.send_all(vec![b'x'; 1000]).await;
        sent.unwrap();
        // An abortive close: the server gets the bytes, then ECONNRESET.
        client.set_linger(Some(Duration::ZERO)).unwrap();
        client.close().await.unwrap();
        // Both arrive before the application looks.
        rt::time::sleep(Duration::from_millis(50)).await;
        let mut received = 0;
        let error = loop {
            match pipe.input.read().await {
                Ok(result) => {
                    let (len, completed) = (result.len(), result.is_completed());
                    received += len;
                    pipe.input.advance_to(len, len).unwrap();
                    assert!(!completed, "the reset must surface as an error");
                }
                Err(err) => break err,
            }
        };
        assert_eq!(received, 1000, "bytes before the reset were dropped");
        assert_eq!(error.kind(), std::io::ErrorKind::ConnectionReset);
    });
}
