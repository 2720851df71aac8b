//! No fd outlives its connection: a connection the server ends is closed after a bounded
//! linger, whether or not the peer ever closes its socket. One test per binary section,
//! serialized, because they count this process's fds.

mod support;

use std::io::{Read, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ringhop_http::{Config, Linger};
use support::{fd_count, settled_fd_count, TestServer};

/// The fd counts are per process: one test at a time.
static SERIAL: Mutex<()> = Mutex::new(());

/// Waits until this process has `expected` fds open (the server runs in-process), or fails
/// with the count it saw.
fn wait_for_fds(expected: usize, within: Duration, what: &str) {
    let deadline = Instant::now() + within;
    loop {
        let now = fd_count();
        if now == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: {now} fds open, expected {expected}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn connections_the_server_ends_are_closed_although_the_peer_keeps_its_socket() {
    let linger = Linger {
        timeout: Duration::from_millis(300),
        max_bytes: 64 * 1024,
    };
    let config = Config::default()
        .linger(linger)
        .idle_timeout(Duration::from_millis(300));
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let server = TestServer::start(config, support::app::router());
    // Warm up (the reactor's lazily created fds, such as the buffer ring, exist now).
    drop(server.exchange(b"GET /plaintext HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"));
    let before = settled_fd_count();
    let mut clients = Vec::new();
    for i in 0..60 {
        let mut stream = server.connect();
        let request: &[u8] = match i % 3 {
            0 => b"BAD\r\n\r\n",
            1 => b"GET /plaintext HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
            // Answered, then idle past the keep-alive timeout.
            _ => b"GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n",
        };
        stream.write_all(request).unwrap();
        clients.push(stream);
    }
    // Every answer arrives whole, then the server's FIN; the clients keep their sockets.
    for (i, stream) in clients.iter_mut().enumerate() {
        let mut out = Vec::new();
        stream.read_to_end(&mut out).unwrap();
        let text = String::from_utf8_lossy(&out);
        let expected = if i % 3 == 0 {
            "HTTP/1.1 400 "
        } else {
            "HTTP/1.1 200 "
        };
        assert!(text.starts_with(expected), "client {i}: {text}");
    }
    // The server's ends close once the linger is over: only the clients' fds remain.
    wait_for_fds(
        before + clients.len(),
        Duration::from_secs(3),
        "after the linger",
    );
}
