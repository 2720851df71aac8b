//! Entry point for the fuzz target in `fuzz/` (feature `fuzzing`, off by default): feeds
//! arbitrary bytes through a pipe into the connection loop — parser, body framing, router,
//! response framing — and checks that it neither panics nor hangs.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use ringhop_pipes::{DuplexPipe, PipeOptions, PipeScheduler};

use crate::config::Config;
use crate::handler::Router;
use crate::request::Request;
use crate::response::Response;

async fn echo(req: &mut Request<'_>, res: &mut Response<'_>) -> std::io::Result<()> {
    let mut total = 0;
    while let Some(chunk) = req.body().chunk().await? {
        total += chunk.len();
    }
    res.body(if total % 2 == 0 { b"even" } else { b"odd" });
    Ok(())
}

async fn hello(_req: &mut Request<'_>, res: &mut Response<'_>) -> std::io::Result<()> {
    res.header("Content-Type", "text/plain")
        .body(b"Hello, World!");
    Ok(())
}

/// Serves `input` (as one peer's complete byte stream) and returns the bytes answered.
pub fn serve_bytes(input: &[u8]) -> Vec<u8> {
    let unbounded = || {
        PipeOptions::default()
            .pause_writer_threshold(0)
            .reader_scheduler(PipeScheduler::Inline)
            .writer_scheduler(PipeScheduler::Inline)
    };
    let (mut transport, application) =
        DuplexPipe::pair(unbounded(), unbounded()).expect("valid options");
    // Split the input in two writes to exercise heads that straddle segments.
    let split = input.len() / 2;
    transport.output.write(&input[..split]);
    let _ = poll_ready(transport.output.flush());
    transport.output.write(&input[split..]);
    let _ = poll_ready(transport.output.flush());
    transport.output.complete(None);
    let router = Router::new().get("/", hello).post("/echo", echo);
    let config = Config::default().max_body(1 << 16);
    poll_ready(crate::conn::serve(application, &router, &config));
    let result = poll_ready(transport.input.read()).expect("server output is readable");
    result.to_vec()
}

/// Polls to completion; the whole input is buffered and the output unbounded, so any
/// `Pending` here is a hang.
fn poll_ready<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..1_000_000 {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
    }
    panic!("the connection loop waits although its whole input is buffered");
}
