//! RSS per idle connected `DuplexPipe`: opens 10,000 idle loopback connections, each served
//! through `pipes::connect` with an application task waiting in `read`, and reports the
//! process's RSS growth divided by the connection count (target: ≤ 8 KiB).
//!
//! `cargo bench --bench idle_rss` (raises RLIMIT_NOFILE to its hard limit).

mod support;

use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ringhop::pipes;
use ringhop::rt::{self, net::TcpListener, Runtime};

const CONNECTIONS: usize = 10_000;

fn main() {
    support::raise_fd_limit();
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--client") {
        return client(&args[i + 1], args[i + 2].parse().unwrap());
    }
    let runtime = Runtime::builder().reactors(1).build().unwrap();
    let waiting = Arc::new(AtomicUsize::new(0));
    let counter = waiting.clone();
    let addr = runtime.block_on_local(move || async move {
        let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        rt::spawn_local(async move {
            while let Ok(stream) = listener.accept().await {
                let mut pipe = pipes::connect(stream).unwrap();
                let counter = counter.clone();
                rt::spawn_local(async move {
                    counter.fetch_add(1, Ordering::Relaxed);
                    // Idle: wait for bytes that never come.
                    let _ = pipe.input.read().await;
                    drop(pipe);
                });
            }
        });
        addr
    });
    // The client sockets live in a child process (one process may not hold 2 × 10,000 fds).
    // Warm up allocator arenas and the reactor's pools with a first batch, then measure.
    let warm = spawn_client(addr, 100);
    wait_for(&waiting, 100);
    let before = support::rss_kib("self");
    let clients = spawn_client(addr, CONNECTIONS);
    wait_for(&waiting, CONNECTIONS + 100);
    std::thread::sleep(Duration::from_millis(200));
    let after = support::rss_kib("self");
    let per_connection = (after - before) as f64 * 1024.0 / CONNECTIONS as f64;
    println!(
        "idle connections: {CONNECTIONS}, RSS {before} KiB -> {after} KiB: {:.0} bytes per idle connected DuplexPipe (target <= 8192), live tasks {}",
        per_connection,
        runtime.handles()[0].stats().live_tasks
    );
    for mut child in [warm, clients] {
        let _ = child.kill();
        let _ = child.wait();
    }
}

fn spawn_client(addr: std::net::SocketAddr, n: usize) -> std::process::Child {
    std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--client", &addr.to_string(), &n.to_string()])
        .spawn()
        .unwrap()
}

/// Child process: opens `n` connections and keeps them idle until killed.
fn client(addr: &str, n: usize) {
    let mut streams = Vec::with_capacity(n);
    for _ in 0..n {
        streams.push(TcpStream::connect(addr).unwrap());
    }
    std::thread::sleep(Duration::from_secs(120));
}

fn wait_for(counter: &AtomicUsize, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while counter.load(Ordering::Relaxed) < n {
        assert!(
            Instant::now() < deadline,
            "only {} connections served",
            counter.load(Ordering::Relaxed)
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}
