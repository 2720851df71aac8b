//! RSS per idle keep-alive HTTP connection: 10,000 connections, each having completed one
//! `/plaintext` request, then left idle; the server process's RSS growth divided by 10,000.
//! Native server (`examples/hello`) and hyper on ringhop (`examples/hyper_app`) next to
//! hyper on tokio (`examples/hyper_tokio`), one reactor / one current_thread worker each, measured as a user would: from the listening
//! process's RSS before its first request. Target: ≤ 4 KiB.
//!
//! `cargo bench --bench http_idle_rss` (builds the two examples; raises RLIMIT_NOFILE).

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const CONNECTIONS: usize = 10_000;
const REQUEST: &[u8] = b"GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n";

fn example(name: &str) -> PathBuf {
    let status = Command::new(env!("CARGO"))
        .args(["build", "--release", "--quiet", "--example", name])
        .status()
        .unwrap();
    assert!(status.success());
    let exe = std::env::current_exe().unwrap();
    exe.parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join(name)
}

/// One request on a fresh connection, response read completely; the connection stays open.
fn keep_alive_connection(port: u16) -> TcpStream {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.write_all(REQUEST).unwrap();
    let mut response = Vec::new();
    let mut buf = [0u8; 512];
    while !response.ends_with(b"Hello, World!") {
        let n = stream.read(&mut buf).unwrap();
        assert!(n > 0, "server closed a keep-alive connection");
        response.extend_from_slice(&buf[..n]);
    }
    stream
}

fn measure(name: &str, binary: &PathBuf, port: u16, target: &str) {
    let mut child: Child = Command::new(binary)
        .env("ADDR", format!("127.0.0.1:{port}"))
        .env("REACTORS", "1")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        std::thread::sleep(Duration::from_millis(10));
    }
    // What a user sees: the process's RSS once it listens, before any request (no warm-up
    // connections whose cost would be left out), against its RSS with the connections idle.
    std::thread::sleep(Duration::from_millis(200));
    let before = support::rss_kib(&child.id().to_string());
    let connections: Vec<TcpStream> = (0..CONNECTIONS)
        .map(|_| keep_alive_connection(port))
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let after = support::rss_kib(&child.id().to_string());
    println!(
        "{name}: RSS {before} KiB -> {after} KiB over {CONNECTIONS} idle keep-alive connections: {:.0} bytes per connection{target}",
        (after.saturating_sub(before)) as f64 * 1024.0 / CONNECTIONS as f64
    );
    drop(connections);
    let _ = child.kill();
    let _ = child.wait();
}

fn main() {
    support::raise_fd_limit();
    let native = example("hello");
    let hyper_ringhop = example("hyper_app");
    let hyper = example("hyper_tokio");
    measure("ringhop native", &native, 18200, " (target <= 4096)");
    measure("hyper on ringhop", &hyper_ringhop, 18202, "");
    measure("hyper on tokio", &hyper, 18201, "");
}
