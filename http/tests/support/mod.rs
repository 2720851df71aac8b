//! A server on a background thread and raw-socket client helpers.
#![allow(dead_code)]

pub mod app;

#[path = "../../../tests/common/net.rs"]
mod net;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use ringhop_http::{Config, Handler, Server};
use ringhop_runtime::Runtime;

pub struct TestServer {
    pub addr: SocketAddr,
    pub runtime: Arc<Runtime>,
    thread: Option<JoinHandle<std::io::Result<()>>>,
}

impl TestServer {
    pub fn start<H: Handler + Clone + Send + 'static>(config: Config, handler: H) -> TestServer {
        Self::start_on(ringhop_runtime::Driver::Auto, config, handler)
    }

    /// The same on a chosen driver.
    pub fn start_on<H: Handler + Clone + Send + 'static>(
        driver: ringhop_runtime::Driver,
        config: Config,
        handler: H,
    ) -> TestServer {
        let runtime = Arc::new(
            Runtime::builder()
                .reactors(1)
                .pin_cores(false)
                .driver(driver)
                .build()
                .unwrap(),
        );
        let addr = net::free_local_addr();
        let rt = runtime.clone();
        let thread = std::thread::spawn(move || {
            Server::bind(addr)
                .config(config)
                .handle_signals(false)
                .run(&rt, handler)
        });
        // Wait until it accepts.
        for _ in 0..500 {
            if TcpStream::connect(addr).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        TestServer {
            addr,
            runtime,
            thread: Some(thread),
        }
    }

    pub fn connect(&self) -> TcpStream {
        let stream = TcpStream::connect(self.addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(15)))
            .unwrap();
        stream
    }

    /// Sends `bytes`, returns everything until the server closes.
    pub fn exchange(&self, bytes: &[u8]) -> String {
        let mut stream = self.connect();
        stream.write_all(bytes).unwrap();
        let mut out = Vec::new();
        let _ = stream.read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    /// Triggers graceful shutdown and waits for `run` to return.
    pub fn stop(mut self) -> std::io::Result<()> {
        ringhop_http::trigger_shutdown(&self.runtime);
        self.thread.take().unwrap().join().unwrap()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(thread) = self.thread.take() {
            ringhop_http::trigger_shutdown(&self.runtime);
            let _ = thread.join();
        }
    }
}

/// File descriptors open in this process (the test server runs in it too).
pub fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// This process's fd count once it stopped changing (connections of earlier steps have
/// finished closing): the same reading over 400 ms, or whatever it is after 5 s.
pub fn settled_fd_count() -> usize {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let mut last = fd_count();
    let mut stable_since = std::time::Instant::now();
    while std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        let now = fd_count();
        if now != last {
            last = now;
            stable_since = std::time::Instant::now();
        } else if stable_since.elapsed() >= Duration::from_millis(400) {
            break;
        }
    }
    last
}

/// One parsed response.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Reads one response (Content-Length or chunked body; none for HEAD when `head`).
pub fn read_reply(reader: &mut BufReader<&mut TcpStream>, head: bool) -> Reply {
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let status: u16 = line
        .split(' ')
        .nth(1)
        .unwrap_or_else(|| panic!("no status line: {line:?}"))
        .parse()
        .unwrap();
    let mut headers = Vec::new();
    loop {
        line.clear();
        reader.read_line(&mut line).unwrap();
        let trimmed = line.trim_end();
        if trimmed.is_empty() {
            break;
        }
        let (name, value) = trimmed.split_once(':').unwrap();
        headers.push((name.to_owned(), value.trim().to_owned()));
    }
    let mut reply = Reply {
        status,
        headers,
        body: Vec::new(),
    };
    if head || status < 200 || status == 204 || status == 304 {
        return reply;
    }
    if let Some(length) = reply.header("content-length") {
        let mut body = vec![0; length.parse().unwrap()];
        reader.read_exact(&mut body).unwrap();
        reply.body = body;
    } else if reply.header("transfer-encoding") == Some("chunked") {
        loop {
            line.clear();
            reader.read_line(&mut line).unwrap();
            let size = usize::from_str_radix(line.trim_end(), 16).unwrap();
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk).unwrap();
            if size == 0 {
                break;
            }
            reply.body.extend_from_slice(&chunk[..size]);
        }
    } else {
        reader.read_to_end(&mut reply.body).unwrap();
    }
    reply
}

/// `count` clients that each write `batch` (pipelined requests) and never read: the
/// answers pile up on the server's side. Returned so they stay open.
pub fn never_reading_clients(server: &TestServer, batch: &[u8], count: usize) -> Vec<TcpStream> {
    (0..count)
        .map(|_| {
            let mut stream = server.connect();
            stream
                .set_write_timeout(Some(std::time::Duration::from_secs(5)))
                .unwrap();
            // Bounded: the server stops reading once its pipes are full.
            let _ = std::io::Write::write_all(&mut stream, batch);
            stream
        })
        .collect()
}
