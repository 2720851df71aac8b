//! TCP echo round trips on loopback, 1 and 64 connections: a ringhop echo server (one
//! reactor) next to a tokio current_thread echo server, same clients, same run. Servers on
//! the first core, clients (plain threads) on the last.
//!
//! `cargo bench --bench tcp`

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ringhop::rt::{self, net::TcpListener, Runtime};

const MESSAGE: usize = 64;

fn main() {
    let runtime = Runtime::builder().reactors(1).build().expect("runtime");
    let ringhop_addr = runtime.block_on_local(|| async {
        let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        rt::spawn_local(async move {
            while let Ok(stream) = listener.accept().await {
                rt::spawn_local(async move {
                    let mut buf = Vec::with_capacity(4096);
                    loop {
                        let (res, filled) = stream.recv(buf).await;
                        if !matches!(res, Ok(n) if n > 0) {
                            break;
                        }
                        let (res, mut sent) = stream.send_all(filled).await;
                        if res.is_err() {
                            break;
                        }
                        sent.clear();
                        buf = sent;
                    }
                });
            }
        });
        addr
    });
    let tokio_addr = tokio_echo_server();
    let cores = core_affinity::get_core_ids().unwrap_or_default();
    if let Some(last) = cores.last().copied() {
        core_affinity::set_for_current(last);
    }
    for connections in [1usize, 64] {
        let (r_rate, r_p50) = round_trips(ringhop_addr, connections);
        let (t_rate, t_p50) = round_trips(tokio_addr, connections);
        println!(
            "echo, {connections} connection(s): ringhop {:.0} round trips/s (p50 {r_p50:?}), tokio {:.0} (p50 {t_p50:?}); ringhop/tokio throughput {:.2}",
            r_rate,
            t_rate,
            r_rate / t_rate
        );
    }
}

fn tokio_echo_server() -> SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        if let Some(first) = core_affinity::get_core_ids().and_then(|ids| ids.first().copied()) {
            core_affinity::set_for_current(first);
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            loop {
                let (mut stream, _) = listener.accept().await.unwrap();
                let _ = stream.set_nodelay(true);
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    loop {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => {
                                if stream.write_all(&buf[..n]).await.is_err() {
                                    break;
                                }
                            }
                        }
                    }
                });
            }
        });
    });
    rx.recv().unwrap()
}

/// Round trips per second over `connections` client threads for about a second, and the
/// median round-trip time.
fn round_trips(addr: SocketAddr, connections: usize) -> (f64, Duration) {
    let duration = Duration::from_secs(1);
    let start = Instant::now();
    let clients: Vec<_> = (0..connections)
        .map(|_| {
            std::thread::spawn(move || {
                let mut stream = std::net::TcpStream::connect(addr).unwrap();
                stream.set_nodelay(true).unwrap();
                let message = [7u8; MESSAGE];
                let mut echoed = [0u8; MESSAGE];
                let mut samples = Vec::with_capacity(1 << 16);
                let end = Instant::now() + duration;
                while Instant::now() < end {
                    let t = Instant::now();
                    stream.write_all(&message).unwrap();
                    stream.read_exact(&mut echoed).unwrap();
                    samples.push(t.elapsed());
                }
                samples
            })
        })
        .collect();
    let mut all: Vec<Duration> = clients
        .into_iter()
        .flat_map(|c| c.join().unwrap())
        .collect();
    let elapsed = start.elapsed();
    all.sort_unstable();
    (all.len() as f64 / elapsed.as_secs_f64(), all[all.len() / 2])
}
