//! Entry point for the fuzz target in `fuzz/` (feature `fuzzing`, off by default): feeds
//! arbitrary bytes through a pipe into the connection loop — parser, body framing, router,
//! response framing — and checks that it neither panics nor hangs, and that everything it
//! answers parses as a sequence of HTTP/1.1 responses.

use std::cell::RefCell;
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use ringhop_pipes::{DuplexPipe, PipeOptions, PipeScheduler};

use crate::config::Config;
use crate::handler::{Handler, Router};
use crate::request::Request;
use crate::response::Response;

async fn echo(req: &mut Request<'_>, res: &mut Response<'_>) -> std::io::Result<()> {
    // A header before the body is read, as real handlers do (the interim 100 must still
    // come first).
    if let Some(content_type) = req.header("content-type") {
        res.header("Content-Type", content_type);
    }
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

thread_local! {
    /// For each request a handler saw, in order: whether it was a HEAD request (its
    /// response has a Content-Length but no body).
    static HEAD_REQUESTS: RefCell<Vec<bool>> = const { RefCell::new(Vec::new()) };
}

/// Records which requests were HEAD requests, then lets the router answer.
struct Recording<H>(H);

impl<H: Handler> Handler for Recording<H> {
    async fn call(&self, req: &mut Request<'_>, res: &mut Response<'_>) -> std::io::Result<()> {
        HEAD_REQUESTS.with(|heads| heads.borrow_mut().push(req.method() == "HEAD"));
        self.0.call(req, res).await
    }
}

/// What the server answered one peer's bytes.
#[derive(Debug)]
pub struct Served {
    /// The bytes written to the connection.
    pub output: Vec<u8>,
    /// The connection ended with an error (a reset), not a clean close.
    pub reset: bool,
    /// For each request a handler saw, whether it was HEAD.
    pub head_requests: Vec<bool>,
}

/// Serves `input` (as one peer's complete byte stream) and returns the bytes answered.
pub fn serve_bytes(input: &[u8]) -> Vec<u8> {
    serve(input).output
}

/// Serves `input` (as one peer's complete byte stream) and reports what was answered.
pub fn serve(input: &[u8]) -> Served {
    // Two writes, to exercise heads that straddle them.
    serve_in_pieces(input, &[input.len() / 2])
}

/// Serves `input` as it would arrive in pieces: cut at each of `cuts` (ascending offsets;
/// the ones past the end are ignored), the connection running on what has arrived before
/// the next piece is written. So heads and bodies arrive incomplete, then completed.
pub fn serve_in_pieces(input: &[u8], cuts: &[usize]) -> Served {
    let unbounded = || {
        PipeOptions::default()
            .pause_writer_threshold(0)
            .reader_scheduler(PipeScheduler::Inline)
            .writer_scheduler(PipeScheduler::Inline)
    };
    let (mut transport, application) =
        DuplexPipe::pair(unbounded(), unbounded()).expect("valid options");
    HEAD_REQUESTS.with(|heads| heads.borrow_mut().clear());
    let router = Recording(Router::new().get("/", hello).post("/echo", echo));
    let config = Config::default().max_body(1 << 16);
    let info = Default::default();
    let mut connection = pin!(crate::conn::serve(application, &info, &router, &config));
    let mut cx = Context::from_waker(Waker::noop());
    let mut finished = false;
    let mut start = 0;
    for end in cuts.iter().copied().chain([input.len()]) {
        let end = end.min(input.len());
        if end < start {
            continue;
        }
        transport.output.write(&input[start..end]);
        let _ = poll_ready(transport.output.flush());
        start = end;
        // Run on what has arrived (the schedulers are inline: nothing else would).
        for _ in 0..64 {
            if finished || connection.as_mut().poll(&mut cx).is_ready() {
                finished = true;
                break;
            }
        }
    }
    transport.output.complete(None);
    if !finished {
        poll_ready(connection);
    }
    let result = poll_ready(transport.input.read()).expect("server output is readable");
    let output = result.to_vec();
    let len = result.len();
    let completed = result.is_completed();
    let reset = !completed && {
        let _ = transport.input.advance_to(len, len);
        poll_ready(transport.input.read()).is_err()
    };
    Served {
        output,
        reset,
        head_requests: HEAD_REQUESTS.with(|heads| std::mem::take(&mut *heads.borrow_mut())),
    }
}

/// Checks that `served.output` is a sequence of HTTP/1.x responses: every head parses on
/// its own (so no interim response sits inside a head), 1xx heads carry no body, and every
/// final response's body is delimited by its Content-Length (none after HEAD, 204, 304),
/// chunked framing, or — last only — the close. A body cut short is allowed only when the
/// connection ended with a reset.
pub fn check_responses(served: &Served) -> Result<(), String> {
    let mut rest = &served.output[..];
    let mut heads = served.head_requests.iter();
    let truncated = |what: &str| {
        if served.reset {
            Ok(())
        } else {
            Err(format!("{what} cut short by a clean close"))
        }
    };
    while !rest.is_empty() {
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut response = httparse::Response::new(&mut headers);
        let head_len = match response.parse(rest) {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) => return truncated("a response head"),
            Err(err) => {
                return Err(format!(
                    "unparsable response head ({err}): {:?}",
                    String::from_utf8_lossy(&rest[..rest.len().min(200)])
                ))
            }
        };
        let code = response.code.unwrap_or(0);
        let header = |name: &str| {
            response
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case(name))
                .map(|h| h.value)
        };
        let content_length = header("content-length");
        let chunked =
            header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case(b"chunked"));
        rest = &rest[head_len..];
        if (100..200).contains(&code) {
            continue;
        }
        // Responses the server wrote without a handler (rejections) come last.
        let head_request = heads.next().copied().unwrap_or(false);
        if head_request || code == 204 || code == 304 {
            continue;
        }
        if chunked {
            loop {
                let Some(line_end) = rest.windows(2).position(|w| w == b"\r\n") else {
                    return truncated("a chunked body");
                };
                let size = std::str::from_utf8(&rest[..line_end])
                    .ok()
                    .and_then(|size| usize::from_str_radix(size, 16).ok())
                    .ok_or_else(|| format!("bad chunk size line {:?}", &rest[..line_end]))?;
                rest = &rest[line_end + 2..];
                if rest.len() < size + 2 {
                    return truncated("a chunk");
                }
                if &rest[size..size + 2] != b"\r\n" {
                    return Err("chunk data not followed by CRLF".into());
                }
                rest = &rest[size + 2..];
                if size == 0 {
                    break;
                }
            }
        } else if let Some(length) = content_length {
            let length: usize = std::str::from_utf8(length)
                .ok()
                .and_then(|l| l.parse().ok())
                .ok_or("bad Content-Length")?;
            if rest.len() < length {
                return truncated("a Content-Length body");
            }
            rest = &rest[length..];
        } else {
            // Close-delimited: the rest is the body, and nothing may follow it.
            return Ok(());
        }
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::{check_responses, serve, serve_in_pieces, Served};

    fn served(output: &[u8], reset: bool) -> Served {
        Served {
            output: output.to_vec(),
            reset,
            head_requests: Vec::new(),
        }
    }

    #[test]
    fn the_oracle_accepts_framed_responses_and_rejects_what_clients_choke_on() {
        let good = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi\
                     HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n";
        assert_eq!(check_responses(&served(good, false)), Ok(()));
        // The defect curl met: an interim response inside a head.
        let interim_inside =
            b"HTTP/1.1 200 OK\r\nContent-Type: a/b\r\nHTTP/1.1 100 Continue\r\n\r\n";
        assert!(check_responses(&served(interim_inside, false)).is_err());
        // A body cut short is fine only with a reset.
        let cut = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhi";
        assert!(check_responses(&served(cut, false)).is_err());
        assert_eq!(check_responses(&served(cut, true)), Ok(()));
    }

    #[test]
    fn an_upload_with_expect_and_a_header_set_first_serves_clean_http() {
        let request = b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Type: a/b\r\n\
                        Expect: 100-continue\r\nContent-Length: 4\r\n\r\nping";
        let served = serve(request);
        assert_eq!(check_responses(&served), Ok(()));
        assert!(served
            .output
            .starts_with(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n"));
    }

    /// A small fuzz run that CI always does (cargo-fuzz needs a nightly toolchain): pipelined
    /// streams of real requests, mutated and arriving in pieces, get well-framed answers —
    /// whatever the bytes.
    #[test]
    fn mutated_pipelined_streams_get_well_framed_answers() {
        let padded = format!(
            "GET / HTTP/1.1\r\nHost: long.example\r\nX-Pad: {}\r\n\r\n",
            "p".repeat(4040)
        );
        let requests: [&[u8]; 7] = [
            b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
            b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n",
            b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
            b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n\
              3;x=\"y\"\r\nabc\r\n0\r\nT: v\r\n\r\n",
            b"POST /echo HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi",
            b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
            // 4,088 bytes: the next head starts 8 bytes before the end of the first 4 KiB segment.
            padded.as_bytes(),
        ];
        let mut mutator = crate::mutate::Mutator::new(
            0x2545_F491_4F6C_DD1D,
            b"\r\n :;=\"0123456789abcdefABCDEF\t\x00\x7f\xff",
        );
        let (mut answered, mut rejected) = (0, 0);
        for round in 0..20_000 {
            let mut stream = Vec::new();
            for _ in 0..1 + mutator.below(4) {
                stream.extend_from_slice(requests[mutator.below(requests.len())]);
            }
            mutator.mutate(&mut stream, 0);
            // Arriving in up to four pieces, cut anywhere, but often close after the end of
            // the first segment, where a head straddles it.
            let mut cuts: Vec<usize> = (0..mutator.below(4))
                .map(|_| match mutator.below(2) {
                    0 => 4096 - 8 + mutator.below(40),
                    _ => mutator.below(stream.len() + 1),
                })
                .collect();
            cuts.sort_unstable();
            let served = serve_in_pieces(&stream, &cuts);
            if let Err(problem) = check_responses(&served) {
                panic!(
                    "round {round}: {problem}\ninput: {:?}\noutput: {:?}",
                    String::from_utf8_lossy(&stream),
                    String::from_utf8_lossy(&served.output)
                );
            }
            answered += usize::from(served.output.starts_with(b"HTTP/1.1 200 OK\r\n"));
            rejected += usize::from(served.output.windows(9).any(|w| w == b" 400 Bad "));
        }
        // Both kinds of stream were met: most served, some refused.
        assert!(
            answered > 5_000 && rejected > 500,
            "{answered} answered, {rejected} refused"
        );
    }
}
