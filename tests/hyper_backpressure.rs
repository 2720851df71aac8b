//! hyper over ringhop meets backpressure: a response body streamed to a client that never
//! reads stops growing the outbound pipe at its pause threshold, instead of buffering the
//! whole body in pipe segments, also when the response is the request's body streamed
//! back (hyper is then woken by the arriving body as well as by the output). (The tests
//! run one at a time, in a binary of their own: they read the process-wide segment count.)

mod support;

use std::convert::Infallible;
use std::io::Write;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming};
use hyper::{Request, Response};
use ringhop::http::Config;
use ringhop::pipes::live_segments;
use support::HyperTestServer;

static CHUNK: [u8; 64 * 1024] = [b'x'; 64 * 1024];

/// 64 MiB in 64 KiB frames, as fast as hyper takes them.
struct Endless {
    left: usize,
}

impl Body for Endless {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.left == 0 {
            return Poll::Ready(None);
        }
        self.left -= 1;
        Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(&CHUNK)))))
    }
}

async fn service(_req: Request<Incoming>) -> Result<Response<Endless>, Infallible> {
    Ok(Response::new(Endless { left: 1024 }))
}

static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn a_streamed_body_to_a_client_that_never_reads_stays_bounded() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let server =
        HyperTestServer::start(Config::default(), 1, || hyper::service::service_fn(service));
    let addr = server.addr;
    let before = live_segments();
    let mut client = std::net::TcpStream::connect(addr).unwrap();
    client
        .write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        .unwrap();
    // The client never reads: the socket buffers fill, then the pipe. Watch the segments
    // for a while; they must level off far below the 64 MiB body.
    let mut peak = 0;
    let deadline = Instant::now() + Duration::from_millis(700);
    while Instant::now() < deadline {
        peak = peak.max(live_segments().saturating_sub(before));
        std::thread::sleep(Duration::from_millis(20));
    }
    let peak_bytes = peak * 4096;
    assert!(
        peak_bytes < 1024 * 1024,
        "the outbound pipe grew to {peak_bytes} bytes for a client that never reads"
    );
    drop(client);
    server.stop().unwrap();
}

#[test]
fn an_echo_to_a_client_that_sends_without_reading_stops_taking_its_body() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // A body the server takes (the default `max_body`, 16 MiB, would refuse it with 413).
    let config = Config::default().max_body(128 << 20);
    let server = HyperTestServer::start(config, 1, || {
        hyper::service::service_fn(|req: Request<Incoming>| async move {
            Ok::<_, Infallible>(Response::new(req.into_body()))
        })
    });
    let before = live_segments();
    let mut client = std::net::TcpStream::connect(server.addr).unwrap();
    let body_len = 64usize << 20;
    let head = format!("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: {body_len}\r\n\r\n");
    client.write_all(head.as_bytes()).unwrap();
    // The client sends its body and never reads the echo: once the socket buffers and the
    // pipes are full, the server stops reading, and the client's writes stall.
    client
        .set_write_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut sent = 0;
    while sent < body_len {
        match client.write(&CHUNK[..CHUNK.len().min(body_len - sent)]) {
            Ok(n) => sent += n,
            Err(_) => break,
        }
    }
    let held = live_segments().saturating_sub(before) * 4096;
    assert!(
        sent < 24 << 20,
        "the server took {sent} bytes of a 64 MiB echo whose client never reads"
    );
    assert!(
        held < 4 << 20,
        "the pipes hold {held} bytes for a client that never reads"
    );
    drop(client);
    server.stop().unwrap();
}
