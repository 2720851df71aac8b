//! `Response`: collects status and headers, then writes the head and the body straight into
//! the connection's output pipe.

use std::cell::RefCell;
use std::future::Future;
use std::io;

use ringhop_pipes::{DuplexPipe, PipeWriter};

use crate::body::{Continue, Exchange};
use crate::chars::{self, is_token};
use crate::date;
use crate::status::Status;
use crate::throttle::Throttle;
use crate::upgrade::OnUpgrade;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    /// Status and headers are still being set: nothing of this response is on the wire.
    Head,
    /// The head is out; a chunked (or, for HTTP/1.0, close-delimited) body is in progress.
    Streaming,
    /// Complete.
    Done,
}

thread_local! {
    /// Handlers that set a 1xx or invalid status, logged sparingly.
    static NOT_FINAL: Throttle = const { Throttle::new() };
}

/// How the body that follows a head is delimited.
#[derive(Clone, Copy)]
enum Framing {
    Length(u64),
    Chunked,
    /// No framing header: a body-less status, or HTTP/1.0's close-delimited body.
    Unframed,
}

/// The response to one request. Set the status and headers, then send either a whole body
/// ([`Response::body`], with a correct `Content-Length`) or a stream
/// ([`Response::start_stream`], [`Response::write_chunk`], [`Response::finish`]).
///
/// Status and headers stay in a per-connection buffer until the body starts, so they can be
/// set in any order, an interim `100 Continue` (sent when the handler first reads a body the
/// client is waiting to send) always precedes them on the wire, and a handler that fails
/// before its body started is still answered with a clean 500.
/// `Server`, `Date`, `Content-Length` / `Transfer-Encoding` and `Connection` are written by
/// the server; such headers given by the handler are ignored.
pub struct Response<'a> {
    out: &'a RefCell<PipeWriter>,
    /// Header lines set so far (the connection's buffer, reused for every response).
    headers: &'a mut Vec<u8>,
    /// Shared with the body: the `Expect: 100-continue` state (once the final head is out,
    /// no interim response) and whether the body is too large to read away afterwards.
    exchange: &'a Exchange,
    status: Status,
    stage: Stage,
    minor_version: u8,
    head_request: bool,
    /// The connection closes after this response.
    pub(crate) close: bool,
    /// A keep-alive HTTP/1.0 client must be told so.
    keep_alive_10: bool,
    /// The request asked to switch protocols (HTTP/1.1, `Connection: upgrade`, `Upgrade`).
    upgrade_requested: bool,
    /// The connection's slot for [`Response::upgrade`]'s protocol: what runs on the
    /// connection after this response (held by the connection, so a response has no drop
    /// glue on the per-request path).
    on_upgrade: &'a mut Option<OnUpgrade>,
}

/// What the connection knows of the request a response answers.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Answering {
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub(crate) minor_version: u8,
    pub(crate) head_request: bool,
    /// The connection closes after this response.
    pub(crate) close: bool,
    pub(crate) upgrade_requested: bool,
}

impl<'a> Response<'a> {
    pub(crate) fn new(
        out: &'a RefCell<PipeWriter>,
        headers: &'a mut Vec<u8>,
        exchange: &'a Exchange,
        on_upgrade: &'a mut Option<OnUpgrade>,
        request: Answering,
    ) -> Self {
        let Answering {
            minor_version,
            head_request,
            close,
            upgrade_requested,
        } = request;
        headers.clear();
        Response {
            out,
            headers,
            exchange,
            status: Status::OK,
            stage: Stage::Head,
            minor_version,
            head_request,
            close,
            keep_alive_10: minor_version == 0 && !close,
            upgrade_requested,
            on_upgrade,
        }
    }

    /// `true` if the request asked to switch protocols: HTTP/1.1 with an `Upgrade` field
    /// and `upgrade` among its `Connection` options (a WebSocket handshake, h2c).
    pub fn upgrade_requested(&self) -> bool {
        self.upgrade_requested
    }

    /// Switches the connection to `protocol`: writes `101 Switching Protocols` with
    /// `Upgrade: protocol`, `Connection: Upgrade` and the headers set so far (for a
    /// WebSocket, `Sec-WebSocket-Accept`), and once the handler returned (and the request's
    /// body, if any, was read), runs `on_upgrade` with the connection's pipes: bytes the
    /// client sent after the request are the first `input` sees. HTTP is over for this
    /// connection; `on_upgrade` runs in the connection's task, on its reactor.
    ///
    /// Refused (`InvalidInput`, nothing written) unless the request asked for an upgrade
    /// ([`upgrade_requested`](Self::upgrade_requested)) and no response was started. A request
    /// body must be read first (a client waiting for `100 Continue` is not invited to send it
    /// once the 101 is out): if the body is not read by the end of the handler and cannot be
    /// drained, the connection is reset instead of switched. So it is when the handler fails
    /// or panics after this call: `on_upgrade` never runs.
    ///
    /// ```no_run
    /// # use ringhop_http::{Request, Response};
    /// async fn handler(req: &mut Request<'_>, res: &mut Response<'_>) -> std::io::Result<()> {
    ///     if req.header("upgrade") == Some(&b"echo"[..]) {
    ///         return res.upgrade("echo", |mut pipe| async move {
    ///             while let Ok(read) = pipe.input.read().await {
    ///                 let (bytes, done) = (read.to_vec(), read.is_completed());
    ///                 let _ = pipe.input.advance_to(bytes.len(), bytes.len());
    ///                 if pipe.output.write_all(&bytes).await.is_err() || done {
    ///                     break;
    ///                 }
    ///             }
    ///         });
    ///     }
    ///     res.body(b"ask for Upgrade: echo");
    ///     Ok(())
    /// }
    /// ```
    pub fn upgrade<F, Fut>(&mut self, protocol: &str, on_upgrade: F) -> io::Result<()>
    where
        F: FnOnce(DuplexPipe) -> Fut + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        if !self.upgrade_requested {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the request did not ask to upgrade (HTTP/1.1, Connection: upgrade, Upgrade)",
            ));
        }
        if self.is_started() || !is_token(protocol.as_bytes()) && !is_protocol(protocol) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "upgrade: the response already started, or the protocol is not a valid token",
            ));
        }
        self.stage = Stage::Done;
        self.status = Status::SWITCHING_PROTOCOLS;
        // The new protocol's bytes follow: no `100 Continue` may come after the 101.
        if self.exchange.expect.get() == Continue::Pending {
            self.exchange.expect.set(Continue::Refused);
        }
        let mut out = self.out.borrow_mut();
        out.write(b"HTTP/1.1 101 Switching Protocols");
        date::with_server_and_date(|lines| out.write(lines));
        out.write(self.headers);
        out.write(b"Upgrade: ");
        out.write(protocol.as_bytes());
        out.write(b"\r\nConnection: Upgrade\r\n\r\n");
        *self.on_upgrade = Some(Box::new(move |pipe| Box::pin(on_upgrade(pipe))));
        Ok(())
    }

    /// Sets the status (default 200), also after headers were set. Ignored once the body
    /// started.
    ///
    /// A status that cannot end a request's exchange — 1xx is interim (a client reads on
    /// for the final answer, which would never come, or take the next request's for it;
    /// [`upgrade`](Self::upgrade) sends the 101), and anything outside 100–999 is not a
    /// status code — is a handler bug: the response goes out as `500 Internal Server
    /// Error` instead, as hyper does.
    pub fn status(&mut self, status: Status) -> &mut Self {
        if self.stage == Stage::Head {
            self.status = if (200..=999).contains(&status.0) {
                status
            } else {
                if let Some(times) = NOT_FINAL.with(|t| t.ready(ringhop_runtime::time::now())) {
                    tracing::warn!(
                        status = status.0,
                        times,
                        "ringhop-http: a handler set a status that cannot be a final answer; \
                         sent 500 instead"
                    );
                }
                Status::INTERNAL_SERVER_ERROR
            };
        }
        self
    }

    /// The status that is (or will be) sent.
    pub fn current_status(&self) -> Status {
        self.status
    }

    /// `true` once the head went out (the body started): status and headers are final.
    pub fn is_started(&self) -> bool {
        self.stage != Stage::Head
    }

    /// Forgets the upgrade this response asked for: its handler failed after the 101, so the
    /// new protocol must not start (the connection is reset instead).
    pub(crate) fn abandon_upgrade(&mut self) -> bool {
        self.on_upgrade.take().is_some()
    }

    /// A streamed body is in progress (started, not finished): ending now would cut it.
    pub(crate) fn is_streaming(&self) -> bool {
        self.stage == Stage::Streaming
    }

    /// Asks to close the connection after this response.
    pub fn close_connection(&mut self) -> &mut Self {
        self.close = true;
        self
    }

    /// Adds a header. Names the server manages, names that are not RFC 9110 tokens, values
    /// with control characters other than tab (CR and LF would split the response), and
    /// headers added after the body started are ignored.
    pub fn header(&mut self, name: &str, value: impl AsRef<[u8]>) -> &mut Self {
        let value = value.as_ref();
        // On the name's length first: most names are none of these, and each is then
        // compared once instead of against every managed name in turn.
        let managed = match name.len() {
            4 => name.eq_ignore_ascii_case("date"),
            6 => name.eq_ignore_ascii_case("server"),
            10 => name.eq_ignore_ascii_case("connection"),
            14 => name.eq_ignore_ascii_case("content-length"),
            17 => name.eq_ignore_ascii_case("transfer-encoding"),
            _ => false,
        };
        // The most common name is known to be a token without a look at each byte.
        let token = chars::eq_bytes(name.as_bytes(), b"Content-Type") || is_token(name.as_bytes());
        if managed || !token || has_control(value) || self.is_started() {
            return self;
        }
        self.headers.extend_from_slice(name.as_bytes());
        self.headers.extend_from_slice(b": ");
        self.headers.extend_from_slice(value);
        self.headers.extend_from_slice(b"\r\n");
        self
    }

    /// Replaces whatever the handler set with a short `status` answer and closes the
    /// connection afterwards. Only before the body started.
    pub(crate) fn fail(&mut self, status: Status) {
        debug_assert!(!self.is_started());
        self.headers.clear();
        self.status(status)
            .close_connection()
            .header("Content-Type", "text/plain")
            .body(status.reason().as_bytes());
    }

    /// Writes the head: status line, `Server` and `Date`, the handler's headers, framing,
    /// `Connection`, and the empty line.
    fn write_head(&mut self, out: &mut PipeWriter, framing: Framing) {
        // Whatever the handler does now, the client gets its final answer instead. Its
        // body, not invited, cannot be drained afterwards: unless the handler reads it all,
        // the connection closes after this response, so the response says so.
        if self.exchange.expect.get() == Continue::Pending {
            self.exchange.expect.set(Continue::Refused);
            self.close = true;
        }
        match (self.minor_version, self.status.0) {
            (1, 200) => date::with_ok_server_and_date(|lines| out.write(lines)),
            (minor, _) => {
                out.write(if minor == 0 {
                    b"HTTP/1.0 "
                } else {
                    b"HTTP/1.1 "
                });
                write_decimal(out, u64::from(self.status.0));
                out.write(b" ");
                out.write(self.status.reason().as_bytes());
                date::with_server_and_date(|lines| out.write(lines));
            }
        }
        out.write(self.headers);
        // The head's end is assembled on the stack and written at once.
        let mut end = HeadEnd::default();
        match framing {
            Framing::Length(length) => {
                end.push(b"Content-Length: ");
                end.push_decimal(length);
                end.push(b"\r\n");
            }
            Framing::Chunked => end.push(b"Transfer-Encoding: chunked\r\n"),
            Framing::Unframed => {}
        }
        // A shutdown that began while the handler ran closes the connection after this.
        self.close |= crate::shutdown::is_triggered();
        if self.close {
            end.push(b"Connection: close\r\n");
        } else if self.keep_alive_10 {
            end.push(b"Connection: keep-alive\r\n");
        }
        end.push(b"\r\n");
        out.write(end.as_bytes());
    }

    /// Writes a complete body with its `Content-Length` (no body bytes for HEAD requests, and
    /// none for 1xx/204/304 statuses). Ignored if the body was already started.
    pub fn body(&mut self, bytes: &[u8]) {
        if self.is_started() {
            return;
        }
        self.stage = Stage::Done;
        // A whole response before a body too large to read away afterwards: the connection
        // will close unless the handler still reads the body to its end, so the response
        // says it closes. (A streamed response is not judged so: its handler is most likely
        // reading the body as it answers, as an echo does.)
        if self.exchange.body_over_drain.get() {
            self.close = true;
        }
        let framing = if self.status.forbids_body() {
            Framing::Unframed
        } else {
            Framing::Length(bytes.len() as u64)
        };
        let mut out = self.out.borrow_mut();
        self.write_head(&mut out, framing);
        if !self.head_request && !self.status.forbids_body() {
            out.write(bytes);
        }
    }

    /// Sends an [`http::Response`] built with the `http` crate: its status, headers (those the
    /// server manages excepted) and whole body.
    pub fn send_http<B: AsRef<[u8]>>(&mut self, response: http::Response<B>) {
        let (parts, body) = response.into_parts();
        self.status(Status(parts.status.as_u16()));
        for (name, value) in &parts.headers {
            self.header(name.as_str(), value.as_bytes());
        }
        self.body(body.as_ref());
    }

    /// Starts a streamed body: chunked for HTTP/1.1, close-delimited for HTTP/1.0.
    pub fn start_stream(&mut self) {
        if self.is_started() {
            return;
        }
        self.stage = Stage::Streaming;
        if self.minor_version == 0 {
            self.close = true;
        }
        let framing =
            if self.minor_version == 1 && !self.head_request && !self.status.forbids_body() {
                Framing::Chunked
            } else {
                Framing::Unframed
            };
        let mut out = self.out.borrow_mut();
        self.write_head(&mut out, framing);
    }
    /// Writes one chunk of a streamed body and flushes (waiting while the peer is slow).
    pub async fn write_chunk(&mut self, bytes: &[u8]) -> io::Result<()> {
        if self.stage != Stage::Streaming {
            self.start_stream();
        }
        if bytes.is_empty() || self.head_request || self.status.forbids_body() {
            return Ok(());
        }
        {
            let mut out = self.out.borrow_mut();
            if self.minor_version == 1 {
                write_hex(&mut out, bytes.len() as u64);
                out.write(b"\r\n");
                out.write(bytes);
                out.write(b"\r\n");
            } else {
                out.write(bytes);
            }
        }
        let result = flush(self.out).await?;
        if result.completed {
            return Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the connection is closed",
            ));
        }
        Ok(())
    }

    /// Ends a streamed body (the last chunk). Done by the server if the handler does not.
    pub fn finish(&mut self) {
        match self.stage {
            Stage::Head => self.body(b""),
            Stage::Streaming => {
                self.stage = Stage::Done;
                if self.minor_version == 1 && !self.head_request && !self.status.forbids_body() {
                    self.out.borrow_mut().write(b"0\r\n\r\n");
                }
            }
            Stage::Done => {}
        }
    }
}

/// `name/version` (RFC 9110 §7.8's protocol), e.g. `HTTP/2.0`.
fn is_protocol(protocol: &str) -> bool {
    match protocol.split_once('/') {
        Some((name, version)) => is_token(name.as_bytes()) && is_token(version.as_bytes()),
        None => false,
    }
}

/// Whether a header value holds a control character other than tab (CR, LF, NUL, DEL...).
/// Eight bytes per step: a word with no byte below 0x20 and none equal to 0x7f (the usual
/// value) is clear; a word with one is checked byte by byte (a tab is allowed). Bytes past
/// the last whole word are looked at as the value's last eight, overlapping clean ones.
fn has_control(bytes: &[u8]) -> bool {
    if bytes.len() < 8 {
        return has_control_bytewise(bytes);
    }
    let flagged = |chunk: &[u8]| {
        let w = chars::word(chunk);
        // Some byte below 0x20 (bytes of 0x80 and above never count), or some byte 0x7f.
        chars::bytes_below(w, 0x20) | chars::bytes_equal(w, 0x7f) != 0
            && has_control_bytewise(chunk)
    };
    let mut words = bytes.chunks_exact(8);
    if words.any(flagged) {
        return true;
    }
    !words.remainder().is_empty() && flagged(&bytes[bytes.len() - 8..])
}

fn has_control_bytewise(bytes: &[u8]) -> bool {
    bytes.iter().fold(false, |bad, &b| {
        bad | ((b < 0x20) & (b != b'\t')) | (b == 0x7f)
    })
}

/// The end of a response head — its framing line, its `Connection` line, the empty line —
/// built on the stack: one copy into the pipe instead of four small ones.
struct HeadEnd {
    /// The longest end: `Content-Length: ` with 20 digits, `Connection: keep-alive`, CRLFs.
    buf: [u8; 64],
    len: usize,
}

impl Default for HeadEnd {
    fn default() -> Self {
        HeadEnd {
            buf: [0; 64],
            len: 0,
        }
    }
}

impl HeadEnd {
    fn push(&mut self, bytes: &[u8]) {
        self.buf[self.len..self.len + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len();
    }

    fn push_decimal(&mut self, value: u64) {
        let digits = value.checked_ilog10().unwrap_or(0) as usize + 1;
        let mut rest = value;
        for at in (self.len..self.len + digits).rev() {
            self.buf[at] = b'0' + (rest % 10) as u8;
            rest /= 10;
        }
        self.len += digits;
    }

    fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// Writes `value` in decimal without allocating.
pub(crate) fn write_decimal(out: &mut PipeWriter, mut value: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    out.write(&digits[i..]);
}

fn write_hex(out: &mut PipeWriter, mut value: u64) {
    let mut digits = [0u8; 16];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b"0123456789abcdef"[(value % 16) as usize];
        value /= 16;
        if value == 0 {
            break;
        }
    }
    out.write(&digits[i..]);
}

/// Flushes the shared output without holding its `RefCell` borrow across the wait.
pub(crate) async fn flush(out: &RefCell<PipeWriter>) -> io::Result<ringhop_pipes::FlushResult> {
    std::future::poll_fn(|cx| out.borrow_mut().poll_flush(cx)).await
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::future::Future;
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};

    use ringhop_pipes::{Pipe, PipeOptions};

    use crate::body::Exchange;

    use super::{has_control, Answering, HeadEnd, Response};
    use crate::chars::is_token;

    #[test]
    fn control_characters_are_found_at_every_position() {
        for b in 0..=255u8 {
            let control = (b < 0x20 && b != b'\t') || b == 0x7f;
            for len in 1..20 {
                for at in 0..len {
                    let mut value = vec![b'a'; len];
                    value[at] = b;
                    assert_eq!(has_control(&value), control, "{b:#x} at {at} of {len}");
                }
            }
        }
        assert!(!has_control("tab\tand ünïcödé, 0x80-0xff".as_bytes()));
    }

    #[test]
    fn a_head_end_holds_the_longest_framing_and_connection_lines() {
        for value in [0, 7, 9, 10, 99, 100, 12_345, u64::MAX] {
            let mut end = HeadEnd::default();
            end.push(b"Content-Length: ");
            end.push_decimal(value);
            end.push(b"\r\nConnection: keep-alive\r\n\r\n");
            let expected = format!("Content-Length: {value}\r\nConnection: keep-alive\r\n\r\n");
            assert_eq!(end.as_bytes(), expected.as_bytes());
        }
    }

    #[test]
    fn header_names_must_be_tokens_and_values_free_of_controls() {
        assert!(is_token(b"Content-Type"));
        assert!(is_token(b"X-a.b_c~1!"));
        for bad in [
            &b""[..],
            b"X Y",
            b"X:Y",
            b"X\r\nY",
            b"X\0",
            b"\xc3\xa9",
            b"X(Y)",
        ] {
            assert!(!is_token(bad), "{bad:?}");
        }
        assert!(!has_control(b"text/plain; charset=utf-8\tx"));
        for bad in [&b"a\rb"[..], b"a\nb", b"a\0", b"a\x7f", b"\x1b[0m"] {
            assert!(has_control(bad), "{bad:?}");
        }
    }

    #[test]
    fn unsafe_headers_never_reach_the_wire() {
        let bytes = sent(|res| {
            res.header("X-Ok", "fine")
                .header("X-Split", "a\r\nSet-Cookie: evil=1")
                .header("Bad Name", "v")
                .header("content-length", "999")
                .body(b"hi")
        });
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.contains("\r\nX-Ok: fine\r\n"), "{text}");
        assert!(!text.contains("evil"), "{text}");
        assert!(!text.contains("Bad Name"), "{text}");
        assert!(text.contains("\r\nContent-Length: 2\r\n"), "{text}");
        assert!(!text.contains("999"), "{text}");
        assert!(text.ends_with("\r\n\r\nhi"), "{text}");
    }

    /// Each response once through the pipe, as the client reads it.
    fn sent(respond: impl FnOnce(&mut Response<'_>)) -> Vec<u8> {
        let options = PipeOptions::default().pause_writer_threshold(1 << 20);
        let (mut reader, writer) = Pipe::new(options).unwrap();
        let out = RefCell::new(writer);
        let (mut headers, exchange) = (Vec::new(), Exchange::new());
        let mut slot = None;
        let request = Answering {
            minor_version: 1,
            head_request: false,
            close: false,
            upgrade_requested: false,
        };
        respond(&mut Response::new(
            &out,
            &mut headers,
            &exchange,
            &mut slot,
            request,
        ));
        let mut writer = out.borrow_mut();
        let mut flush = pin!(writer.flush());
        let mut cx = Context::from_waker(Waker::noop());
        assert!(matches!(flush.as_mut().poll(&mut cx), Poll::Ready(Ok(_))));
        reader.try_read().expect("flushed").unwrap().to_vec()
    }

    #[test]
    fn responses_of_any_size_are_whole() {
        // Within one pipe segment, around a segment's size, and over several: head, headers
        // and body each once, in order.
        for (body_len, header_len) in [
            (13, 10),
            (3_900, 10),
            (4_100, 10),
            (10, 5_000),
            (70_000, 9_000),
        ] {
            let body: Vec<u8> = (0..body_len).map(|i| b'a' + (i % 26) as u8).collect();
            let value = "v".repeat(header_len);
            let bytes = sent(|res| {
                res.header("X-Long", &value)
                    .status(crate::status::Status(201))
                    .body(&body)
            });
            let head_end = bytes.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
            let head = std::str::from_utf8(&bytes[..head_end]).unwrap();
            assert!(
                head.starts_with("HTTP/1.1 201 Created\r\nServer: ringhop\r\nDate: "),
                "{head}"
            );
            assert!(
                head.contains(&format!("\r\nX-Long: {value}\r\n")),
                "{body_len}"
            );
            assert!(
                head.ends_with(&format!("\r\nContent-Length: {body_len}\r\n\r\n")),
                "{head}"
            );
            assert_eq!(&bytes[head_end..], &body[..], "{body_len}");
        }
    }
}
