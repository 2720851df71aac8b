//! One connection: read a head, run the handler, frame the response, repeat — all on the
//! connection's reactor. Responses to pipelined requests are batched: the output is flushed
//! when no further request is already buffered (before waiting for more bytes), when the
//! batch reaches half the output pipe's pause threshold (so a client that pipelines without
//! reading meets backpressure), and before yielding when the task's budget is spent.

use std::cell::RefCell;
use std::future::Future;
use std::io;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::{Context, Poll};

use ringhop_pipes::watchdog::{Deadline, Expired};
use ringhop_pipes::{ConnInfo, DuplexPipe, PipeReader, PipeWriter};
use ringhop_runtime::{coop, time};

use crate::body::{Body, BodyDecoder, BodyLimits, Continue, Exchange};
use crate::config::Config;
use crate::handler::Handler;
use crate::parse::{parse_head, Head, KnownMethod};
use crate::request::Request;
use crate::response::{flush, Answering, Response};
use crate::shutdown;
use crate::slot::Pooled;
use crate::stats::{self, Event};
use crate::status::Status;
use crate::upgrade::Upgraded;

/// Per-connection buffers, reused for every request (no allocation per request).
struct Buffers {
    head_buf: Vec<u8>,
    head: Head,
    decoder: BodyDecoder,
    /// Header lines of the response being built, until its head goes out.
    response_headers: Vec<u8>,
}

enum HeadOutcome {
    /// A head is parsed; it ends this many bytes into the input pipe's last read (to be
    /// consumed with the body, or before the next head).
    Ready(usize),
    /// Peer closed, idle timeout, or shutdown between requests: close quietly.
    Close,
    Reject(Status),
}

/// Serves requests on `pipe` until the connection ends.
///
/// A plain fn returning an async block, not an `async fn`: an async fn keeps its arguments
/// twice in its state (captured, and moved into locals), and this state lives as long as
/// the connection (idle ones included).
#[allow(clippy::manual_async_fn)] // not an `async fn`: see the doc comment
pub(crate) fn serve<'a, H: Handler>(
    pipe: DuplexPipe,
    info: &'a ConnInfo,
    handler: &'a H,
    config: &'a Config,
) -> impl Future<Output = ()> + 'a {
    let DuplexPipe { mut input, output } = pipe;
    let output = RefCell::new(output);
    async move {
        // Grown on demand and then reused: an idle connection keeps only what its requests
        // needed so far.
        let mut buffers = Buffers {
            head_buf: Vec::new(),
            head: Head::default(),
            decoder: BodyDecoder::new(),
            response_headers: Vec::new(),
        };
        // Whether the current request's client waits for `100 Continue`, and whether its
        // body is too large to read away after the response (the body and the response both
        // see it: whichever goes out first settles it).
        let exchange = Exchange::new();
        let mut unflushed = false;
        // Header and idle timeouts: one deadline on the coarse clock for the connection's life.
        let deadline = Deadline::new();
        // A response cut short: the connection ends with a reset, not a clean close.
        let mut cut = false;
        // A `101 Switching Protocols` went out: what runs on the connection next.
        let mut upgraded = None;
        loop {
            let head = read_head(
                &mut input,
                &output,
                &mut buffers,
                config,
                &deadline,
                &mut unflushed,
            );
            let head_end = match head.await {
                HeadOutcome::Ready(head_end) => head_end,
                HeadOutcome::Close => break,
                HeadOutcome::Reject(status) => {
                    stats::count(if status == Status::REQUEST_TIMEOUT {
                        Event::HeaderTimeout
                    } else {
                        Event::Rejected
                    });
                    reject(&output, &mut buffers.response_headers, status);
                    break;
                }
            };
            let Buffers {
                head_buf,
                head,
                decoder,
                response_headers,
            } = &mut buffers;
            // The head's bytes are consumed by the first body read or by the next head's
            // read, whichever comes first (for a pipelined request without a body, under the
            // same pipe lock as the read of the next head).
            decoder.reset(head.framing(), BodyLimits::new(config), head_end);
            exchange
                .expect
                .set(if head.expect_continue && !decoder.is_done() {
                    Continue::Pending
                } else {
                    Continue::NotDue
                });
            exchange
                .body_over_drain
                .set(decoder.remaining_over(config.max_drain));
            let head_request = head.known_method == Some(KnownMethod::HEAD);
            let close = !head.keep_alive || shutdown::is_triggered();
            let request = Answering {
                minor_version: head.minor_version,
                head_request,
                close,
                upgrade_requested: head.upgrade,
            };
            let mut res =
                Response::new(&output, response_headers, &exchange, &mut upgraded, request);
            let outcome = {
                let mut req = Request {
                    buf: head_buf,
                    head,
                    conn: info,
                    body: Body {
                        input: &mut input,
                        output: &output,
                        decoder,
                        exchange: &exchange,
                        deadline: &deadline,
                    },
                };
                stats::request_served();
                // In a pooled slot (see `slot.rs`): the connection's own state machine then has no
                // room for the router's largest handler future, and stays small while it idles.
                CatchUnwind(Pooled::new(handler.call(&mut req, &mut res))).await
            };
            let handler_failed = !matches!(outcome, Ok(Ok(())));
            let failure = decoder
                .failed
                .or(handler_failed.then_some(Status::INTERNAL_SERVER_ERROR));
            match failure {
                // Nothing of the response is out yet (headers set so far are dropped).
                Some(status) if !res.is_started() => res.fail(status),
                // The 101 is out, but the handler failed (or the body it should have read
                // was malformed): the new protocol does not start (it would get the body's
                // bytes as its own), and the connection ends with a reset, as for any
                // response cut short.
                Some(_) if res.abandon_upgrade() => {
                    cut = true;
                    break;
                }
                // Part of a response is out: cut the connection with a reset, so the client
                // sees a broken response instead of a complete-looking one (a close-delimited
                // HTTP/1.0 body would otherwise end like a complete one).
                Some(_) if res.is_streaming() => {
                    cut = true;
                    break;
                }
                // The response is complete (the handler failed after it): it goes out, then
                // the connection closes normally.
                Some(_) => break,
                None => res.finish(),
            }
            let mut close = res.close;
            if upgraded.is_some() {
                // The body (if any) comes before the new protocol's bytes: read it away first.
                // If that cannot be done, the 101 is already out: reset, do not end cleanly.
                if !decoder.is_done()
                    && !Box::pin(drain_body(
                        &mut input, &output, decoder, &exchange, &deadline, config,
                    ))
                    .await
                {
                    upgraded = None;
                    cut = true;
                }
                break;
            }
            if !close && !decoder.is_done() {
                // Boxed: only requests whose handler left the body unread get here, and its
                // state would otherwise widen every idle connection's task.
                close = !Box::pin(drain_body(
                    &mut input, &output, decoder, &exchange, &deadline, config,
                ))
                .await;
            }
            if close {
                break;
            }
            unflushed = true;
            // A client that pipelines without reading meets backpressure here, not only when
            // its batch ends.
            let over = {
                let out = output.borrow();
                out.pause_threshold() > 0 && out.unflushed_len() >= out.pause_threshold() / 2
            };
            if over {
                unflushed = false;
                if !matches!(flush(&output).await, Ok(result) if !result.completed) {
                    break;
                }
            }
        }
        // Whatever is still buffered (a last response, an error answer) goes out before the end.
        let mut output = output.into_inner();
        let _ = output.flush().await;
        if let Some(on_upgrade) = upgraded {
            // What the request left unconsumed (its head, the last body chunk) is not the
            // new protocol's.
            if buffers.decoder.consume_pending(&mut input).is_err() {
                return;
            }
            let _upgraded = Upgraded::start();
            on_upgrade(DuplexPipe { input, output }).await;
            return;
        }
        output.complete(cut.then(|| {
            io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "the response was cut short (or an upgrade abandoned)",
            )
        }));
        input.complete(None);
    }
}

/// Writes an error response for a request that could not be parsed.
fn reject(output: &RefCell<PipeWriter>, headers: &mut Vec<u8>, status: Status) {
    let exchange = Exchange::new();
    let mut no_upgrade = None;
    let request = Answering {
        minor_version: 1,
        head_request: false,
        close: true,
        upgrade_requested: false,
    };
    Response::new(output, headers, &exchange, &mut no_upgrade, request).fail(status);
}

/// Reads and discards what the handler left of the body. `false`: too much, close instead.
async fn drain_body(
    input: &mut PipeReader,
    output: &RefCell<PipeWriter>,
    decoder: &mut BodyDecoder,
    exchange: &Exchange,
    deadline: &Deadline,
    config: &Config,
) -> bool {
    if decoder.remaining_over(config.max_drain) {
        return false;
    }
    // Nobody asked for the body: do not invite the client to send it.
    if exchange.expect.get() != Continue::NotDue {
        return false;
    }
    let mut body = Body {
        input,
        output,
        decoder,
        exchange,
        deadline,
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

/// Waits for a complete head and parses it into `buffers`. (Not an `async fn`, for the
/// reason given at [`serve`]: an idle connection waits inside this future.)
#[allow(clippy::manual_async_fn)] // not an `async fn`: see `serve`
fn read_head<'a>(
    input: &'a mut PipeReader,
    output: &'a RefCell<PipeWriter>,
    buffers: &'a mut Buffers,
    config: &'a Config,
    deadline: &'a Deadline,
    unflushed: &'a mut bool,
) -> impl Future<Output = HeadOutcome> + 'a {
    async move {
        // Fairness: a connection whose next request is always buffered still yields once its
        // task's budget is spent, its answers so far sent first.
        if !coop::has_budget() && std::mem::take(unflushed) && flush(output).await.is_err() {
            return HeadOutcome::Close;
        }
        coop::proceed().await;
        let mut started: Option<time::Instant> = None;
        // The last request's unconsumed bytes (its head, its last body chunk): the next head
        // may follow them in the read still in hand (pipelined requests). Otherwise they are
        // consumed under the same lock as a look for the next head. Without them, a look
        // before waiting is worth its lock only when the last read left bytes behind: the
        // wait's own read finds whatever arrived, and is parsed in place.
        let pending = buffers.decoder.take_pending();
        if pending > 0 {
            if let Some(outcome) = head_in_hand(input, pending, buffers, config) {
                deadline.set(None);
                return outcome;
            }
        }
        // Whether this poll left the task's waker with the input pipe (a look that found
        // nothing): the wait below then needs no second look, unless something awaited in
        // between (a wake may have been spent on it).
        let mut registered = false;
        let mut examined = if pending > 0 {
            let look = AdvanceAndLook {
                input: Some(&mut *input),
                consumed: pending,
            };
            match look.await {
                Ok(Some(result)) => Some(examine(result, buffers, config)),
                Ok(None) => {
                    registered = true;
                    None
                }
                Err(_) => Some(Examined::Close),
            }
        } else if input.left_unconsumed() {
            input
                .try_read()
                .map(|result| examine(result, buffers, config))
        } else {
            None
        };
        loop {
            let parsed = match examined.take() {
                Some(Examined::Parsed(parsed)) => Some(parsed),
                Some(Examined::Close) => return HeadOutcome::Close,
                Some(Examined::Nothing) | None => None,
            };
            if let Some((parsed, len, completed)) = parsed {
                match parsed {
                    // Its bytes are consumed later (see `BodyDecoder::reset`).
                    Ok(Some(head_len)) => {
                        // The handler's time is not the client's.
                        deadline.set(None);
                        return HeadOutcome::Ready(head_len);
                    }
                    Ok(None) if completed => return HeadOutcome::Close,
                    // Incomplete: everything was examined, so the next read waits for more.
                    // The header timeout runs from the first bytes of the head (read only
                    // here: a head that arrives whole never needs the clock).
                    Ok(None) => {
                        started.get_or_insert_with(time::now);
                        let _ = input.advance_to(0, len);
                    }
                    Err(status) => return HeadOutcome::Reject(status),
                }
            }
            // About to wait: answers to earlier requests go out first.
            if *unflushed {
                *unflushed = false;
                let mut waited = false;
                let flushed = std::future::poll_fn(|cx| {
                    let polled = output.borrow_mut().poll_flush(cx);
                    waited |= polled.is_pending();
                    polled
                });
                if flushed.await.is_err() {
                    return HeadOutcome::Close;
                }
                registered &= !waited;
            }
            if started.is_none() && shutdown::is_triggered() {
                return HeadOutcome::Close;
            }
            // No timer per wait: the connection's one deadline moves, the watchdog checks it.
            // A head that is arriving gets the header timeout, shutdown or not; an idle wait
            // also ends when shutdown begins (`shutdown::trigger` ends idle deadlines, so
            // nothing is registered per wait for it). Before its first head (none parsed yet),
            // a connection is not idle between requests: it gets the header timeout too, its
            // clock running from the accept, near enough (as Kestrel and hyper do), so a
            // client that connects and says nothing holds it no longer than a slow head.
            match started {
                Some(at) => deadline.set(Some(time::deadline_after(at, config.header_timeout))),
                None if buffers.head.len == 0 => deadline.set_idle(Some(time::deadline_in(
                    config.header_timeout.min(config.idle_timeout),
                ))),
                None => deadline.set_idle(Some(time::deadline_in(config.idle_timeout))),
            }
            // Registered already: wait for that wake before reading (a separate await, so
            // an idle connection's state keeps no flag beside its read).
            let woken = match std::mem::take(&mut registered) {
                true => deadline.timeout(WokenOnce(false)).await,
                false => Ok(()),
            };
            let read = match woken {
                Ok(()) => deadline.timeout(input.read()).await,
                Err(expired) => Err(expired),
            };
            match read {
                // This read's own result, parsed in place (no second read).
                Ok(result) => examined = Some(examine(result, buffers, config)),
                Err(Expired) if started.is_some() => {
                    return HeadOutcome::Reject(Status::REQUEST_TIMEOUT)
                }
                Err(Expired) => {
                    if !shutdown::is_triggered() {
                        stats::count(Event::Idle);
                    }
                    return HeadOutcome::Close;
                }
            }
        }
    }
}

/// A complete (or malformed) head right after the `pending` bytes of the input's last read,
/// parsed from that read without the pipe's lock; the pipe learns what was consumed once a
/// read has to ask it. `None`: not there in full, to be judged on a fresh read.
fn head_in_hand(
    input: &mut PipeReader,
    pending: usize,
    buffers: &mut Buffers,
    config: &Config,
) -> Option<HeadOutcome> {
    let read = input.last_read()?;
    let first = read.chunks().next().unwrap_or_default();
    let rest = first.get(pending..).filter(|rest| !rest.is_empty())?;
    match parse_in_place(rest, buffers, config) {
        Ok(Some(head_len)) => Some(HeadOutcome::Ready(pending + head_len)),
        // Malformed whatever follows (and `head` is no longer the last request's: it must
        // not be parsed against again).
        Err(status) => Some(HeadOutcome::Reject(status)),
        // Incomplete (nothing parsed).
        Ok(None) => None,
    }
}

/// What a look at the buffered bytes found.
enum Examined {
    /// A parse attempt: its outcome, the bytes looked at, whether the peer is done.
    Parsed((Result<Option<usize>, Status>, usize, bool)),
    /// The peer closed between requests, or the pipe failed.
    Close,
    /// Nothing buffered.
    Nothing,
}

/// Parses what a read returned, in the same borrow.
fn examine(
    result: std::io::Result<ringhop_pipes::ReadResult<'_>>,
    buffers: &mut Buffers,
    config: &Config,
) -> Examined {
    match result {
        Ok(result) if !result.is_empty() => Examined::Parsed((
            parse_result(&result, buffers, config),
            result.len(),
            result.is_completed(),
        )),
        Ok(result) if result.is_completed() => Examined::Close,
        Ok(_) => Examined::Nothing,
        Err(_) => Examined::Close,
    }
}

/// Parses the head from the unconsumed bytes (in place when contiguous, else from a copy);
/// on success leaves a copy of the head in `head_buf` and returns its length.
fn parse_result(
    result: &ringhop_pipes::ReadResult<'_>,
    buffers: &mut Buffers,
    config: &Config,
) -> Result<Option<usize>, Status> {
    // The head is almost always complete in the first chunk, even when many pipelined
    // requests are buffered behind it: parse it in place.
    let first = result.chunks().next().unwrap_or_default();
    if let Some(head_len) = parse_in_place(first, buffers, config)? {
        return Ok(Some(head_len));
    }
    if first.len() == result.len() {
        return Ok(None);
    }
    // The head straddles segments: parse a copy (bounded by the head limit). The copy
    // replaces the last request's head, so its authority span no longer points into it.
    buffers.head.authority = None;
    let take = result.len().min(config.max_head.saturating_add(1));
    buffers.head_buf.resize(take, 0);
    result.copy_to(0, &mut buffers.head_buf);
    if !parse_head(&buffers.head_buf, config, &mut buffers.head, b"")? {
        return Ok(None);
    }
    buffers.head_buf.truncate(buffers.head.len as usize);
    Ok(Some(buffers.head.len as usize))
}

/// Parses a head at the start of `bytes` (contiguous); when complete, copies it into
/// `head_buf` and returns its length.
fn parse_in_place(
    bytes: &[u8],
    buffers: &mut Buffers,
    config: &Config,
) -> Result<Option<usize>, Status> {
    // The last request's authority, still in `head_buf`: checked already.
    let Buffers { head_buf, head, .. } = buffers;
    let valid_authority = head
        .authority
        .and_then(|span| span.get(head_buf))
        .unwrap_or_default();
    if !parse_head(bytes, config, head, valid_authority)? {
        return Ok(None);
    }
    let head_len = head.len as usize;
    head_buf.clear();
    head_buf.extend_from_slice(&bytes[..head_len]);
    Ok(Some(head_len))
}

/// Consumes `consumed` bytes of the input's last read and looks for more under the same
/// lock, ready at once: `None` when there is nothing, the task's waker then left with the
/// pipe. (A named future, not a closure: it sits in the connection's state, which every
/// idle connection keeps.)
struct AdvanceAndLook<'a> {
    input: Option<&'a mut PipeReader>,
    consumed: usize,
}

impl<'a> Future for AdvanceAndLook<'a> {
    type Output = io::Result<Option<io::Result<ringhop_pipes::ReadResult<'a>>>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let consumed = self.consumed;
        let input = self
            .input
            .take()
            .expect("AdvanceAndLook polled after completion");
        Poll::Ready(match input.advance_and_poll_read(consumed, consumed, cx) {
            Ok(Poll::Ready(result)) => Ok(Some(result)),
            Ok(Poll::Pending) => Ok(None),
            Err(err) => Err(err),
        })
    }
}

/// Pending once, then ready: the wait for a wake whose waker an earlier look in the same
/// task poll already left with the input pipe. The read that follows it is the one the
/// wake calls for; without it the wait would take the pipe's lock to find nothing again
/// (a plain request's connection then locks its input once between requests, not twice).
struct WokenOnce(bool);

impl Future for WokenOnce {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<()> {
        if std::mem::replace(&mut self.0, true) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
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
