//! TCP echo round trips on loopback, 1 and 64 connections: a ringhop echo server (one
//! reactor) next to a tokio current_thread echo server, same clients, same run. Servers on
//! the first core, clients (plain threads) on the last.
//!
//! `cargo bench --bench tcp` (criterion; the ratios are printed at the end).

mod support;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use criterion::Throughput;
use ringhop::rt::{self, net::TcpListener, Runtime};
use support::{Summary, Tally};

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
    support::pin_last();
    let mut c = support::criterion();
    let mut summary = Summary::default();
    for connections in [1usize, 64] {
        let (mut ringhop, mut tokio) = (Tally::default(), Tally::default());
        let mut group = c.benchmark_group(format!("echo_round_trip/{connections}_connections"));
        group.throughput(Throughput::Elements(1));
        group.bench_function("ringhop", |b| {
            b.iter_custom(|iters| round_trips(ringhop_addr, connections, iters, &mut ringhop))
        });
        group.bench_function("tokio", |b| {
            b.iter_custom(|iters| round_trips(tokio_addr, connections, iters, &mut tokio))
        });
        group.finish();
        if let (Some(r), Some(t), Some(r50), Some(t50)) = (
            ringhop.per_iter(),
            tokio.per_iter(),
            ringhop.percentile(0.5),
            tokio.percentile(0.5),
        ) {
            summary.add(format!(
                "echo, {connections} connection(s): ringhop {:.0} round trips/s (p50 {r50:?}), tokio {:.0} (p50 {t50:?}); ringhop/tokio throughput {:.2}",
                1.0 / r.as_secs_f64(),
                1.0 / t.as_secs_f64(),
                t.as_secs_f64() / r.as_secs_f64()
            ));
        }
    }
    c.final_summary();
    summary.print();
}

fn tokio_echo_server() -> SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        support::pin_first();
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

/// `iters` round trips of 64 B spread over `connections` client threads; returns the wall
/// time and keeps each round trip's own time for the median.
fn round_trips(addr: SocketAddr, connections: usize, iters: u64, tally: &mut Tally) -> Duration {
    let per_connection = iters.div_ceil(connections as u64);
    let streams: Vec<_> = (0..connections)
        .map(|_| {
            let stream = std::net::TcpStream::connect(addr).unwrap();
            stream.set_nodelay(true).unwrap();
            stream
        })
        .collect();
    let start = Instant::now();
    let clients: Vec<_> = streams
        .into_iter()
        .map(|mut stream| {
            std::thread::spawn(move || {
                let message = [7u8; MESSAGE];
                let mut echoed = [0u8; MESSAGE];
                let mut samples = Vec::with_capacity(per_connection as usize);
                for _ in 0..per_connection {
                    let t = Instant::now();
                    stream.write_all(&message).unwrap();
                    stream.read_exact(&mut echoed).unwrap();
                    samples.push(t.elapsed());
                }
                samples
            })
        })
        .collect();
    let samples: Vec<Vec<Duration>> = clients.into_iter().map(|c| c.join().unwrap()).collect();
    let elapsed = start.elapsed();
    for latency in samples.into_iter().flatten() {
        tally.latency(latency);
    }
    tally.record_rounded(iters, per_connection * connections as u64, elapsed)
}
