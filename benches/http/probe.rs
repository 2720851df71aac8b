//! Latency probe for pipelined load: while wrk saturates a server, one more connection sends
//! batches of `DEPTH` pipelined GETs and times each batch until its last response arrived.
//! (wrk's own percentiles are unreliable with pipelining, so `run.sh` reports these.)
//!
//! `latency_probe <addr> <path> <depth> <duration-ms>` prints `p50_us p99_us batches`.
//! A pause of 1 ms between batches keeps the probe's own load negligible next to wrk's.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

fn main() -> io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, addr, path, depth, duration_ms] = args.as_slice() else {
        eprintln!("usage: latency_probe <addr> <path> <depth> <duration-ms>");
        std::process::exit(2);
    };
    let depth: usize = depth.parse().expect("depth: a number");
    let duration = Duration::from_millis(duration_ms.parse().expect("duration-ms: a number"));
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").repeat(depth);
    let mut stream = TcpStream::connect(addr.as_str())?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut responses = Responses::default();
    let mut samples = Vec::new();
    let end = Instant::now() + duration;
    while Instant::now() < end {
        let start = Instant::now();
        stream.write_all(request.as_bytes())?;
        for _ in 0..depth {
            responses.next(&mut stream)?;
        }
        samples.push(start.elapsed());
        std::thread::sleep(Duration::from_millis(1));
    }
    samples.sort_unstable();
    let pct = |p: f64| samples[((samples.len() - 1) as f64 * p).round() as usize];
    println!(
        "{:.0} {:.0} {}",
        pct(0.50).as_secs_f64() * 1e6,
        pct(0.99).as_secs_f64() * 1e6,
        samples.len()
    );
    Ok(())
}

/// Reads responses framed by `Content-Length` off one connection.
#[derive(Default)]
struct Responses {
    buf: Vec<u8>,
}

impl Responses {
    /// Consumes one whole response (head and body).
    fn next(&mut self, stream: &mut TcpStream) -> io::Result<()> {
        loop {
            if let Some(len) = self.complete_len()? {
                self.buf.drain(..len);
                return Ok(());
            }
            let mut chunk = [0u8; 16 * 1024];
            let n = stream.read(&mut chunk)?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "server closed the connection",
                ));
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Length of the first response if all of it is buffered.
    fn complete_len(&self) -> io::Result<Option<usize>> {
        let Some(head_end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            return Ok(None);
        };
        let length = self.buf[..head_end]
            .split(|&b| b == b'\n')
            .find_map(|line| {
                let colon = line.iter().position(|&b| b == b':')?;
                let (name, value) = line.split_at(colon);
                if !name.trim_ascii().eq_ignore_ascii_case(b"content-length") {
                    return None;
                }
                std::str::from_utf8(value[1..].trim_ascii())
                    .ok()?
                    .parse::<usize>()
                    .ok()
            })
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    "response without Content-Length",
                )
            })?;
        let total = head_end + 4 + length;
        Ok((self.buf.len() >= total).then_some(total))
    }
}
