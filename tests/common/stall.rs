//! A client that sends a burst of a request body and then stalls: shared by the native and
//! hyper servers' body-rate tests (included with `#[path]`).

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Declares a 1,000,000-byte body for `POST /upload`, sends 100 kB of it at once, then
/// nothing: returns what the server answered (read until it closed, 10 s at most) and how
/// long after the burst it closed.
pub fn burst_then_stall(addr: SocketAddr) -> (String, Duration) {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .write_all(b"POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 1000000\r\n\r\n")
        .unwrap();
    stream.write_all(&[b'x'; 100_000]).unwrap();
    let stalled = Instant::now();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    (
        String::from_utf8_lossy(&answer).into_owned(),
        stalled.elapsed(),
    )
}
