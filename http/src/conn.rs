//! One connection: read a head, run the handler, frame the response, repeat — all on the
//! connection's reactor. Responses to pipelined requests are batched: the output is flushed
//! only when no further request is already buffered (or before waiting for more bytes).

use std::cell::RefCell;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::{Context, Poll};

use ringhop_pipes::{DuplexPipe, PipeReader, PipeWriter};
use ringhop_runtime::time;

use crate::body::{Body, BodyDecoder};
use crate::config::Config;
use crate::handler::Handler;
use crate::parse::{parse_head, Head};
use crate::request::Request;
use crate::response::{flush, Response};
use crate::shutdown;
use crate::status::Status;

/// Per-connection buffers, reused for every request (no allocation per request).
struct Buffers {
    head_buf: Vec<u8>,
    head: Head,
    decoder: BodyDecoder,
}

enum HeadOutcome {
    Ready,
    /// Peer closed, idle timeout, or shutdown between requests: close quietly.
    Close,
    Reject(Status),
}

/// Serves requests on `pipe` until the connection ends.
pub(crate) async fn serve<H: Handler>(pipe: DuplexPipe, handler: &H, config: &Config) {
    let DuplexPipe { mut input, output } = pipe;
    let output = RefCell::new(output);
    // Grown on demand and then reused: an idle connection keeps only what its requests
    // needed so far.
    let mut buffers = Buffers {
        head_buf: Vec::new(),
        head: Head::default(),
        decoder: BodyDecoder::new(),
    };
    let mut unflushed = false;
    loop {
        match read_head(&mut input, &output, &mut buffers, config, &mut unflushed).await {
            HeadOutcome::Ready => {}
            HeadOutcome::Close => break,
            HeadOutcome::Reject(status) => {
                reject(&output, status);
                break;
            }
        }
        let Buffers {
            head_buf,
            head,
            decoder,
        } = &mut buffers;
        decoder.reset(head.framing(), head.expect_continue, config.max_body);
        let head_request = &head_buf[head.method.clone()] == b"HEAD";
        let close = !head.keep_alive || shutdown::is_triggered();
        let mut res = Response::new(&output, head.minor_version, head_request, close);
        let outcome = {
            let mut req = Request {
                buf: head_buf,
                head,
                body: Body {
                    input: &mut input,
                    output: &output,
                    decoder,
                },
            };
            CatchUnwind(handler.call(&mut req, &mut res)).await
        };
        let handler_failed = !matches!(outcome, Ok(Ok(())));
        let failure = decoder
            .failed
            .or(handler_failed.then_some(Status::INTERNAL_SERVER_ERROR));
        match failure {
            Some(status) if !res.is_started() => {
                res.status(status)
                    .close_connection()
                    .header("Content-Type", "text/plain")
                    .body(status.reason().as_bytes());
            }
            // Part of a response is out: leave it unfinished and cut the connection, so the
            // client sees a truncated response instead of a complete-looking one.
            Some(_) => break,
            None => res.finish(),
        }
        let mut close = res.close;
        if !close && !decoder.is_done() {
            close = !drain_body(&mut input, &output, decoder, config).await;
        }
        if close {
            break;
        }
        unflushed = true;
    }
    // Whatever is still buffered (a last response, an error answer) goes out before the end.
    let mut output = output.into_inner();
    let _ = output.flush().await;
    output.complete(None);
    input.complete(None);
}

/// Writes an error response for a request that could not be parsed.
fn reject(output: &RefCell<PipeWriter>, status: Status) {
    let mut res = Response::new(output, 1, false, true);
    res.status(status)
        .header("Content-Type", "text/plain")
        .body(status.reason().as_bytes());
}

/// Reads and discards what the handler left of the body. `false`: too much, close instead.
async fn drain_body(
    input: &mut PipeReader,
    output: &RefCell<PipeWriter>,
    decoder: &mut BodyDecoder,
    config: &Config,
) -> bool {
    if decoder
        .known_remaining()
        .is_some_and(|remaining| remaining > config.max_drain)
    {
        return false;
    }
    // Nobody asked for the body: do not invite the client to send it.
    if decoder.continue_pending {
        return false;
    }
    let mut body = Body {
        input,
        output,
        decoder,
    };
    let mut drained = 0u64;
    loop {
        match body.chunk().await {
            Ok(Some(chunk)) => {
                drained += chunk.len() as u64;
                if drained > config.max_drain {
                    return false;
                }
            }
            Ok(None) => return true,
            Err(_) => return false,
        }
    }
}

/// Waits for a complete head and parses it into `buffers`.
async fn read_head(
    input: &mut PipeReader,
    output: &RefCell<PipeWriter>,
    buffers: &mut Buffers,
    config: &Config,
    unflushed: &mut bool,
) -> HeadOutcome {
    let mut started: Option<time::Instant> = None;
    loop {
        // One look at the buffered bytes: parse them in the same borrow.
        let parsed = match input.try_read() {
            Some(Ok(result)) if !result.is_empty() => Some((
                parse_result(&result, buffers, config),
                result.len(),
                result.is_completed(),
            )),
            Some(Ok(result)) if result.is_completed() => return HeadOutcome::Close,
            Some(Ok(_)) | None => None,
            Some(Err(_)) => return HeadOutcome::Close,
        };
        if let Some((parsed, len, completed)) = parsed {
            started.get_or_insert_with(time::now);
            match parsed {
                Ok(Some(head_len)) => {
                    let _ = input.advance_to(head_len, head_len);
                    return HeadOutcome::Ready;
                }
                Ok(None) if completed => return HeadOutcome::Close,
                // Incomplete: everything was examined, so the next read waits for more.
                Ok(None) => {
                    let _ = input.advance_to(0, len);
                }
                Err(status) => return HeadOutcome::Reject(status),
            }
        }
        // About to wait: answers to earlier requests go out first.
        if *unflushed {
            *unflushed = false;
            if flush(output).await.is_err() {
                return HeadOutcome::Close;
            }
        }
        if started.is_none() && shutdown::is_triggered() {
            return HeadOutcome::Close;
        }
        let limit = match started {
            Some(at) => config.header_timeout.saturating_sub(at.elapsed()),
            None => config.idle_timeout,
        };
        let waited = shutdown::unless_shutdown(time::timeout(limit, input.read())).await;
        match waited {
            Some(Ok(Ok(_))) => {}
            Some(Ok(Err(_))) => return HeadOutcome::Close,
            Some(Err(_elapsed)) if started.is_some() => {
                return HeadOutcome::Reject(Status::REQUEST_TIMEOUT)
            }
            // Idle keep-alive timeout, or shutdown while idle.
            Some(Err(_)) | None if started.is_none() => return HeadOutcome::Close,
            // Shutdown while a head is arriving: give it the header timeout.
            None => {}
            Some(Err(_)) => return HeadOutcome::Close,
        }
    }
}

/// Parses the head from the unconsumed bytes (in place when contiguous, else from a copy);
/// on success leaves a copy of the head in `head_buf` and returns its length.
fn parse_result(
    result: &ringhop_pipes::ReadResult<'_>,
    buffers: &mut Buffers,
    config: &Config,
) -> Result<Option<usize>, Status> {
    if let Some(bytes) = result.as_contiguous() {
        if !parse_head(bytes, config, &mut buffers.head)? {
            return Ok(None);
        }
        let head_len = buffers.head.len;
        buffers.head_buf.clear();
        buffers.head_buf.extend_from_slice(&bytes[..head_len]);
        return Ok(Some(head_len));
    }
    // The head straddles segments: parse a copy (bounded by the head limit).
    let take = result.len().min(config.max_head + 1);
    buffers.head_buf.resize(take, 0);
    result.copy_to(0, &mut buffers.head_buf);
    if !parse_head(&buffers.head_buf, config, &mut buffers.head)? {
        return Ok(None);
    }
    buffers.head_buf.truncate(buffers.head.len);
    Ok(Some(buffers.head.len))
}

/// Catches a panicking handler, so one bad request costs one connection, not the reactor.
struct CatchUnwind<F>(F);

impl<F: Future> Future for CatchUnwind<F> {
    type Output = std::thread::Result<F::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // SAFETY: structural pinning of the only field; it is never moved out.
        let future = unsafe { self.map_unchecked_mut(|this| &mut this.0) };
        match std::panic::catch_unwind(AssertUnwindSafe(|| future.poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(output)) => Poll::Ready(Ok(output)),
            Err(payload) => Poll::Ready(Err(payload)),
        }
    }
}
