//! Request bodies: `Content-Length` and chunked framing decoded straight from the input
//! pipe, as a stream of borrowed chunks.

use std::cell::{Cell, RefCell};
use std::io;

use ringhop_pipes::{PipeReader, PipeWriter};

use std::time::{Duration, Instant};

use ringhop_pipes::watchdog::{Deadline, Expired};
use ringhop_pipes::ReadResult;
use ringhop_runtime::time;

use crate::chars::{is_tchar, is_token};
use crate::config::{Config, MinDataRate};
use crate::parse::Framing;
use crate::rate_window::{BelowRate, RateWindow};
use crate::status::Status;

/// Longest chunk-size line (size, extensions) or trailer line accepted.
const MAX_CHUNK_LINE: usize = 4096;

#[derive(Debug)]
enum State {
    Length { remaining: u64 },
    ChunkSize,
    ChunkData { remaining: u64 },
    ChunkDataEnd,
    Trailers,
    Done,
}

/// Where a request with `Expect: 100-continue` stands; shared by the body (which sends the
/// interim response at its first read) and the response (whose final head settles it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Continue {
    /// No interim response is due: none was asked for, or it was sent.
    NotDue,
    /// The client waits for `100 Continue` before it sends the body.
    Pending,
    /// The final head went out first: the client was refused the interim response, and may
    /// not send the body at all, so the server must not wait for it to keep the connection.
    Refused,
}

/// What the body and the response of one request share: either may settle it first.
#[derive(Debug)]
pub(crate) struct Exchange {
    /// Where `Expect: 100-continue` stands.
    pub(crate) expect: Cell<Continue>,
    /// More of the body is unread than the server reads away after the response (its
    /// declared length is over `max_drain`, and the handler has not read it to its end):
    /// unless the handler still reads it, the connection closes after the response, and
    /// the response says so.
    pub(crate) body_over_drain: Cell<bool>,
}

impl Exchange {
    pub(crate) fn new() -> Self {
        Exchange {
            expect: Cell::new(Continue::NotDue),
            body_over_drain: Cell::new(false),
        }
    }
}

/// The limits a body is decoded under (from [`Config`]).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct BodyLimits {
    max_body: u64,
    // `u32`s (a limit beyond 4 GiB is no limit): every connection keeps a copy while idle.
    max_chunk_extensions: u32,
    max_trailers: u32,
    max_trailer_fields: u32,
    min_rate: Option<MinDataRate>,
}

impl BodyLimits {
    pub(crate) fn new(config: &Config) -> Self {
        BodyLimits {
            max_body: config.max_body,
            max_chunk_extensions: saturate(config.max_chunk_extensions),
            max_trailers: saturate(config.max_trailers),
            max_trailer_fields: saturate(config.max_trailer_fields),
            min_rate: config.min_request_body_data_rate,
        }
    }
}

fn saturate(limit: usize) -> u32 {
    u32::try_from(limit).unwrap_or(u32::MAX)
}

/// Decoding state of the current request's body, owned by the connection.
#[derive(Debug)]
pub(crate) struct BodyDecoder {
    state: State,
    /// Bytes read but not yet consumed from the input pipe: the head's, then those of the
    /// last returned chunk. Consumed by the next body read, or by the next head's read
    /// (`take_pending`) under the same pipe lock as that read.
    pending: usize,
    received: u64,
    /// Bytes of chunk extensions so far in this body.
    extensions: usize,
    /// Bytes and fields of the trailer section so far.
    trailer_bytes: usize,
    trailer_fields: usize,
    /// Bytes of this body (data and framing) taken from the connection so far, and the
    /// time body reads waited for them: the minimum rate's measure.
    delivered: u64,
    waited: Duration,
    window: RateWindow,
    limits: BodyLimits,
    /// Why the body could not be read (the connection answers with it and closes).
    pub(crate) failed: Option<Status>,
}

impl BodyDecoder {
    pub(crate) fn new() -> Self {
        BodyDecoder {
            state: State::Done,
            pending: 0,
            received: 0,
            extensions: 0,
            trailer_bytes: 0,
            trailer_fields: 0,
            delivered: 0,
            waited: Duration::ZERO,
            window: RateWindow::default(),
            limits: BodyLimits::default(),
            failed: None,
        }
    }

    /// Starts the body of a request whose head (`head_len` bytes at the front of the input
    /// pipe's last read) is still to be consumed.
    pub(crate) fn reset(&mut self, framing: Framing, limits: BodyLimits, head_len: usize) {
        self.state = match framing {
            Framing::Length(0) => State::Done,
            Framing::Length(remaining) => State::Length { remaining },
            Framing::Chunked => State::ChunkSize,
        };
        self.pending = head_len;
        self.received = 0;
        self.extensions = 0;
        self.trailer_bytes = 0;
        self.trailer_fields = 0;
        self.delivered = 0;
        self.waited = Duration::ZERO;
        self.window = RateWindow::default();
        self.limits = limits;
        self.failed = None;
    }

    /// The bytes to consume before the next read of the input pipe (see `pending`).
    pub(crate) fn take_pending(&mut self) -> usize {
        std::mem::take(&mut self.pending)
    }

    /// Consumes them now (a body read, or the pipe handed over after an upgrade).
    pub(crate) fn consume_pending(&mut self, input: &mut PipeReader) -> io::Result<()> {
        match self.take_pending() {
            0 => Ok(()),
            pending => input.advance_to(pending, pending),
        }
    }

    pub(crate) fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }

    /// How long a body read starting now may wait before the minimum rate is judged (the
    /// current window's rest; see [`RateWindow`]); `None` without a rate.
    fn read_allowance(&mut self) -> Result<Option<Duration>, BelowRate> {
        let Some(rate) = self.limits.min_rate else {
            return Ok(None);
        };
        self.window
            .check(&rate, self.waited, self.delivered)
            .map(Some)
    }

    /// More body bytes are known to be expected than `limit` (a chunked body's rest is
    /// not known).
    pub(crate) fn remaining_over(&self, limit: u64) -> bool {
        matches!(self.state, State::Length { remaining } if remaining > limit)
    }

    fn fail(&mut self, status: Status, message: &str) -> io::Error {
        self.failed = Some(status);
        self.state = State::Done;
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{message} ({})", status.0),
        )
    }
}

/// The body of a request: an async stream of byte chunks read straight from the connection.
///
/// ```no_run
/// # async fn demo(body: &mut ringhop_http::Body<'_>) -> std::io::Result<()> {
/// let mut total = 0;
/// while let Some(chunk) = body.chunk().await? {
///     total += chunk.len();
/// }
/// # Ok(()) }
/// ```
pub struct Body<'a> {
    pub(crate) input: &'a mut PipeReader,
    pub(crate) output: &'a RefCell<PipeWriter>,
    pub(crate) decoder: &'a mut BodyDecoder,
    /// The `Expect: 100-continue` state and the unread body, shared with the `Response`.
    pub(crate) exchange: &'a Exchange,
    /// The connection's deadline, which body reads set for the minimum data rate.
    pub(crate) deadline: &'a Deadline,
}

impl Body<'_> {
    /// The next chunk of body bytes, `None` at the end. Framing errors (bad chunk sizes, a
    /// body over the limit, a peer that closed early) are errors; the server then answers
    /// 400/413 and closes the connection.
    pub async fn chunk(&mut self) -> io::Result<Option<&[u8]>> {
        let len = match self.next_len().await? {
            Some(len) => len,
            None => return Ok(None),
        };
        let result = self
            .input
            .try_read()
            .expect("bytes found by next_len are still unexamined")?;
        let chunk = result.chunks().next().unwrap_or_default();
        Ok(Some(&chunk[..len]))
    }

    /// Reads the whole remaining body into `out`.
    pub async fn read_to_end(&mut self, out: &mut Vec<u8>) -> io::Result<usize> {
        let start = out.len();
        while let Some(chunk) = self.chunk().await? {
            out.extend_from_slice(chunk);
        }
        Ok(out.len() - start)
    }

    /// Advances the framing until body bytes are available; returns how many of them (in the
    /// first chunk of the pipe) belong to the body, or `None` at the end.
    async fn next_len(&mut self) -> io::Result<Option<usize>> {
        let decoder = &mut *self.decoder;
        decoder.consume_pending(self.input)?;
        if self.exchange.expect.get() == Continue::Pending {
            self.exchange.expect.set(Continue::NotDue);
            self.output
                .borrow_mut()
                .write(b"HTTP/1.1 100 Continue\r\n\r\n");
            crate::response::flush(self.output).await?;
        } else if self.exchange.expect.get() == Continue::Refused {
            // The final head went out before the body was asked for: the client waits for
            // it (or for a 100) before sending, so make sure it is on its way.
            crate::response::flush(self.output).await?;
        }
        loop {
            match decoder.state {
                State::Done => return Ok(None),
                State::Length { remaining } | State::ChunkData { remaining } => {
                    let result =
                        timed_read(self.input, self.output, self.deadline, decoder).await?;
                    let first = result.chunks().next().unwrap_or_default().len();
                    if first == 0 {
                        if result.is_completed() {
                            return Err(decoder.fail(Status::BAD_REQUEST, "body ended early"));
                        }
                        continue;
                    }
                    if let State::ChunkData { remaining } = decoder.state {
                        // When the chunk's end is already buffered (the common case), check
                        // its CRLF before handing out any of its data, so a framing error is
                        // answered 400 before the handler starts its response.
                        if result.len() as u64 >= remaining.saturating_add(2) {
                            let mut crlf = [0u8; 2];
                            result.copy_to(remaining as usize, &mut crlf);
                            if crlf != *b"\r\n" {
                                return Err(decoder
                                    .fail(Status::BAD_REQUEST, "chunk data not followed by CRLF"));
                            }
                        }
                    }
                    let len = (first as u64).min(remaining) as usize;
                    let remaining = remaining - len as u64;
                    decoder.state = match decoder.state {
                        State::Length { .. } if remaining == 0 => State::Done,
                        State::Length { .. } => State::Length { remaining },
                        _ if remaining == 0 => State::ChunkDataEnd,
                        _ => State::ChunkData { remaining },
                    };
                    decoder.pending = len;
                    decoder.delivered += len as u64;
                    if matches!(decoder.state, State::Done) {
                        self.exchange.body_over_drain.set(false);
                    }
                    return Ok(Some(len));
                }
                State::ChunkSize | State::ChunkDataEnd | State::Trailers => {
                    let result =
                        timed_read(self.input, self.output, self.deadline, decoder).await?;
                    // Declared after the await, so the buffer is not part of the future's
                    // state (which every idle connection carries).
                    let mut line = [0u8; MAX_CHUNK_LINE];
                    let len = result.len();
                    let end = result.find_byte(b'\n');
                    let Some(end) = end.filter(|&end| end < MAX_CHUNK_LINE) else {
                        let completed = result.is_completed();
                        if len >= MAX_CHUNK_LINE {
                            // A trailer field too long is a header section too large (431,
                            // as for the section's own limits); a chunk line, malformed.
                            return Err(if matches!(decoder.state, State::Trailers) {
                                decoder.fail(Status::HEADERS_TOO_LARGE, "trailer field too long")
                            } else {
                                decoder.fail(Status::BAD_REQUEST, "chunk line too long")
                            });
                        }
                        if completed {
                            return Err(decoder.fail(Status::BAD_REQUEST, "body ended early"));
                        }
                        // An incomplete line: wait for more bytes.
                        self.input.advance_to(0, len)?;
                        continue;
                    };
                    result.copy_to(0, &mut line[..end + 1]);
                    self.input.advance_to(end + 1, end + 1)?;
                    decoder.delivered += end as u64 + 1;
                    let Some(line) = line[..end + 1].strip_suffix(b"\r\n") else {
                        return Err(decoder.fail(Status::BAD_REQUEST, "chunk line without CRLF"));
                    };
                    decoder.state = match decoder.state {
                        State::ChunkSize => {
                            let Some((size, extensions)) = parse_chunk_size(line) else {
                                return Err(decoder.fail(Status::BAD_REQUEST, "bad chunk size"));
                            };
                            decoder.extensions += extensions;
                            if decoder.extensions > decoder.limits.max_chunk_extensions as usize {
                                return Err(decoder
                                    .fail(Status::BAD_REQUEST, "chunk extensions over the limit"));
                            }
                            decoder.received = decoder.received.saturating_add(size);
                            if decoder.received > decoder.limits.max_body {
                                return Err(decoder.fail(
                                    Status::CONTENT_TOO_LARGE,
                                    "chunked body over the limit",
                                ));
                            }
                            if size == 0 {
                                State::Trailers
                            } else {
                                State::ChunkData { remaining: size }
                            }
                        }
                        State::ChunkDataEnd if line.is_empty() => State::ChunkSize,
                        State::ChunkDataEnd => {
                            return Err(decoder.fail(Status::BAD_REQUEST, "chunk data too long"))
                        }
                        // Trailer fields are checked and dropped; an empty line ends the body.
                        _ if line.is_empty() => State::Done,
                        _ => {
                            decoder.trailer_bytes += line.len() + 2;
                            decoder.trailer_fields += 1;
                            if decoder.trailer_bytes > decoder.limits.max_trailers as usize
                                || decoder.trailer_fields
                                    > decoder.limits.max_trailer_fields as usize
                            {
                                return Err(decoder.fail(
                                    Status::HEADERS_TOO_LARGE,
                                    "trailer section over the limit",
                                ));
                            }
                            if !is_field_line(line) {
                                return Err(decoder.fail(Status::BAD_REQUEST, "malformed trailer"));
                            }
                            State::Trailers
                        }
                    };
                }
            }
        }
    }
}

/// Waits for body bytes under the minimum request body data rate. The clock runs only
/// while a body read waits: time the handler spends elsewhere is not the client's.
async fn timed_read<'r>(
    input: &'r mut PipeReader,
    output: &RefCell<PipeWriter>,
    deadline: &Deadline,
    decoder: &mut BodyDecoder,
) -> io::Result<ReadResult<'r>> {
    let mut read = std::pin::pin!(input.read());
    loop {
        let started = time::now();
        let allowance = match decoder.read_allowance() {
            Ok(allowance) => allowance,
            Err(BelowRate) => {
                crate::stats::count(crate::stats::Event::BodyRate);
                return Err(decoder.fail(
                    Status::REQUEST_TIMEOUT,
                    "request body below the minimum data rate",
                ));
            }
        };
        deadline.set(allowance.map(|allowance| time::deadline_after(started, allowance)));
        let waiting = Waiting {
            deadline,
            waited: &mut decoder.waited,
            started,
        };
        let polled = deadline
            .timeout(std::future::poll_fn(|cx| {
                let polled = std::future::Future::poll(read.as_mut(), cx);
                // About to wait for the client: what is answered so far goes out first. A
                // finished response (the handler's, before its body is read away, or an
                // earlier pipelined request's) must not wait for body bytes the client may
                // send only once it has that answer. The flush publishes at once; should the
                // pipe be full, its wake is one more poll of this read.
                if polled.is_pending() && output.borrow().unflushed_len() > 0 {
                    let _ = output.borrow_mut().poll_flush(cx);
                }
                polled
            }))
            .await;
        drop(waiting);
        match polled {
            Ok(result) => return result,
            // The window ended while this read waited: judged at the loop's top (the next
            // window opens when the bytes paid for this one), the read still pending.
            Err(Expired) => continue,
        }
    }
}

/// A body read's wait, ended however the read ends — dropped mid-wait too, as by a
/// handler's own timeout around it: the rate's deadline is disarmed, and the time waited
/// counts against the rate (uncounted, a handler that kept giving up on its reads would
/// let a client that sends nothing hold the connection for ever).
struct Waiting<'a> {
    deadline: &'a Deadline,
    waited: &'a mut Duration,
    started: Instant,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.deadline.set(None);
        *self.waited += time::now().saturating_duration_since(self.started);
    }
}

/// `field-name ":" field-value` with a token name and no control characters but tab.
fn is_field_line(line: &[u8]) -> bool {
    let Some(colon) = line.iter().position(|&b| b == b':') else {
        return false;
    };
    let (name, value) = (&line[..colon], &line[colon + 1..]);
    is_token(name) && !value.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f)
}

/// `1*HEXDIG [ chunk-ext ]`: the size and the length of the extensions, or `None` when
/// malformed or over 2^60 (leading zeros aside).
fn parse_chunk_size(line: &[u8]) -> Option<(u64, usize)> {
    let digits_end = line
        .iter()
        .position(|b| !b.is_ascii_hexdigit())
        .unwrap_or(line.len());
    let (digits, rest) = line.split_at(digits_end);
    let significant = crate::chars::without_leading_zeros(digits).len();
    if digits.is_empty() || significant > 15 {
        return None;
    }
    // Extensions are allowed (and ignored) when well-formed; anything else is not.
    if !is_chunk_ext(rest) {
        return None;
    }
    let size = digits.iter().try_fold(0u64, |n, &d| {
        let digit = (d as char).to_digit(16)? as u64;
        Some(n * 16 + digit)
    })?;
    Some((size, line.len() - digits_end))
}

/// RFC 9112 §7.1.1: `*( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )`, a name
/// being a token and a value a token or a quoted string. Whitespace is allowed only before
/// a `;` or around a `=`: each round must find a `;` after it, so none may end the line.
fn is_chunk_ext(mut rest: &[u8]) -> bool {
    fn skip_bws(bytes: &[u8]) -> &[u8] {
        let spaces = bytes
            .iter()
            .take_while(|&&b| b == b' ' || b == b'\t')
            .count();
        &bytes[spaces..]
    }
    let token_len = |bytes: &[u8]| bytes.iter().take_while(|&&b| is_tchar(b)).count();
    while !rest.is_empty() {
        let Some(after_semicolon) = skip_bws(rest).strip_prefix(b";") else {
            return false;
        };
        let name = skip_bws(after_semicolon);
        let name_len = token_len(name);
        if name_len == 0 {
            return false;
        }
        rest = &name[name_len..];
        if let Some(value) = skip_bws(rest).strip_prefix(b"=") {
            let value = skip_bws(value);
            let value_len = if value.first() == Some(&b'"') {
                quoted_string_len(value).unwrap_or(0)
            } else {
                token_len(value)
            };
            if value_len == 0 {
                return false;
            }
            rest = &value[value_len..];
        }
    }
    true
}

/// The length of the RFC 9110 `quoted-string` that `bytes` starts with (quotes included).
fn quoted_string_len(bytes: &[u8]) -> Option<usize> {
    let text = |b: u8| b == b'\t' || b == b' ' || (0x21..=0x7e).contains(&b) || b >= 0x80;
    let mut i = 1;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => return Some(i + 1),
            b'\\' => {
                if !bytes.get(i + 1).is_some_and(|&b| text(b)) {
                    return None;
                }
                i += 2;
            }
            b if text(b) => i += 1,
            _ => return None,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::parse_chunk_size;

    #[test]
    fn chunk_sizes() {
        assert_eq!(parse_chunk_size(b"1a"), Some((26, 0)));
        assert_eq!(parse_chunk_size(b"0"), Some((0, 0)));
        assert_eq!(parse_chunk_size(b"A;name=value"), Some((10, 11)));
        assert_eq!(parse_chunk_size(b"ff ;ext"), Some((255, 5)));
        assert_eq!(parse_chunk_size(b""), None);
        assert_eq!(parse_chunk_size(b"-1"), None);
        assert_eq!(parse_chunk_size(b"1x"), None);
        assert_eq!(parse_chunk_size(b"0x10"), None);
        assert_eq!(parse_chunk_size(b"1234567890abcdef0"), None);
        // Leading zeros do not count against the length.
        assert_eq!(parse_chunk_size(b"0000000000000000005"), Some((5, 0)));
        assert_eq!(parse_chunk_size(b"0000000000000000000"), Some((0, 0)));
    }

    #[test]
    fn chunk_extensions_follow_the_grammar() {
        for good in [
            &b"5;a"[..],
            b"5;a=b",
            b"5 ;a",
            b"5\t; a = b",
            b"5;a=\"x y;z\\\"q\";b",
            b"5;a;b=c",
            b"5;a=\"\"",
        ] {
            assert!(
                parse_chunk_size(good).is_some(),
                "{:?}",
                String::from_utf8_lossy(good)
            );
        }
        for bad in [
            &b"5 "[..],
            b"5;",
            b"5; ",
            b"5;a ",
            b"5;a=",
            b"5;=b",
            b"5;a b",
            b"5;a=\"open",
            b"5;a=\"x\x01\"",
            b"5;a=b c",
            b"5 x",
            b"5;a\x7f",
        ] {
            assert!(
                parse_chunk_size(bad).is_none(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
