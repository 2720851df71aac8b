//! hyper over ringhop meets backpressure: a response body streamed to a client that never
//! reads stops growing the outbound pipe at its pause threshold, instead of buffering the
//! whole body in pipe segments. (Alone in its binary: it reads the process-wide segment
//! count.)

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

#[test]
fn a_streamed_body_to_a_client_that_never_reads_stays_bounded() {
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
