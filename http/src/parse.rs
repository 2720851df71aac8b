//! The request head: parsed by httparse, then checked against RFC 9112's framing rules.
//!
//! Everything here is pure (bytes in, offsets or a status out) so the strictness rules are
//! unit-tested without sockets, and the fuzz target can drive it directly.

use std::mem::MaybeUninit;

use crate::chars::REG_NAME;
use crate::config::{Config, HEADER_CAPACITY};
use crate::status::Status;

/// How the request body is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Framing {
    /// `Content-Length` bytes (0 when absent).
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// A parsed head, as offsets into the buffer it was parsed from.
#[derive(Debug, Default)]
pub(crate) struct Head {
    /// Bytes of the head, final empty line included.
    pub(crate) len: u32,
    pub(crate) method: Span,
    /// The method when it is one of RFC 9110's (most requests): no UTF-8 check to read it.
    pub(crate) known_method: Option<KnownMethod>,
    /// UTF-8: httparse hands the target out as a `&str` (`Request::target` relies on it).
    pub(crate) target: Span,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub(crate) minor_version: u8,
    /// Name and value of every header field, in order.
    pub(crate) headers: Vec<(Span, Span)>,
    pub(crate) framing: Option<Framing>,
    /// The request's authority: the target's for an absolute-form target (RFC 9112
    /// §3.2.2: it replaces Host), else the Host field's value; `None` without either.
    pub(crate) authority: Option<Span>,
    pub(crate) keep_alive: bool,
    pub(crate) expect_continue: bool,
    /// HTTP/1.1 with an `Upgrade` field and the `upgrade` connection option.
    pub(crate) upgrade: bool,
}

/// Where a part of the head sits in the head's buffer, as `u32` offsets: half the size of a
/// `Range<usize>`, and every connection keeps its last head's spans (one pair per header
/// field) while it idles.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Span {
    pub(crate) start: u32,
    pub(crate) end: u32,
}

impl Span {
    /// The bytes of `buf` this span covers.
    pub(crate) fn of(self, buf: &[u8]) -> &[u8] {
        &buf[self.start as usize..self.end as usize]
    }

    /// The bytes of `buf` this span covers, if it lies inside it.
    pub(crate) fn get(self, buf: &[u8]) -> Option<&[u8]> {
        buf.get(self.start as usize..self.end as usize)
    }
}

impl Head {
    pub(crate) fn framing(&self) -> Framing {
        self.framing.unwrap_or(Framing::Length(0))
    }
}

/// Parses the head at the start of `buf` into `head` (whose header Vec is reused).
/// `Ok(false)`: more bytes needed. `Err(status)`: reject the request with `status`.
///
/// `valid_authority` is an authority known to be valid (the connection's previous request's):
/// clients repeat their Host on every request, and an identical one is not checked again.
pub(crate) fn parse_head(
    buf: &[u8],
    config: &Config,
    head: &mut Head,
    valid_authority: &[u8],
) -> Result<bool, Status> {
    parse_head_by(buf, config, head, valid_authority, true)
}

/// [`parse_head`], with the canonical path (`canonical_head`) tried first or not: the same
/// answer either way, which a test checks.
fn parse_head_by(
    buf: &[u8],
    config: &Config,
    head: &mut Head,
    valid_authority: &[u8],
    try_canonical: bool,
) -> Result<bool, Status> {
    // The request line is measured by scanning for its end only when the head is incomplete
    // or malformed (a byte loop over every request line cost a fifth of this function).
    // Empty lines before the request line are skipped (RFC 9112 §2.2, as httparse does):
    // the line is measured from its own start.
    let line_too_long = || {
        let start = buf.iter().position(|&b| b != b'\r' && b != b'\n');
        let line = &buf[start.unwrap_or(buf.len())..];
        match line.iter().position(|&b| b == b'\n') {
            None => line.len() > config.max_request_line,
            Some(end) => end > config.max_request_line,
        }
    };
    // Most heads take the canonical path (see `canonical_head`); the rest, and anything it
    // does not take, are parsed and judged by httparse whole.
    let mut common = [httparse::EMPTY_HEADER; COMMON_HEADERS];
    // Uninitialized: zeroing 256 headers (8 KiB) per request was the top item of a
    // pipelined profile; httparse initializes only the headers it fills.
    let mut storage = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; HEADER_CAPACITY];
    let limit = config.max_headers.clamp(1, HEADER_CAPACITY);
    let mut request = httparse::Request::new(&mut []);
    let (len, method, target, minor_version, headers) = match try_canonical
        .then(|| canonical_head(buf, &mut common[..limit.min(COMMON_HEADERS)]))
        .flatten()
    {
        Some(parsed) => parsed,
        None => {
            let len = match request.parse_with_uninit_headers(buf, &mut storage[..limit]) {
                Ok(httparse::Status::Complete(len)) => len,
                Ok(httparse::Status::Partial) => {
                    if line_too_long() {
                        return Err(Status::URI_TOO_LONG);
                    }
                    if buf.len() > config.max_head {
                        return Err(Status::HEADERS_TOO_LARGE);
                    }
                    return Ok(false);
                }
                Err(_) if line_too_long() => return Err(Status::URI_TOO_LONG),
                Err(httparse::Error::TooManyHeaders) => return Err(Status::HEADERS_TOO_LARGE),
                Err(httparse::Error::Version) => {
                    return match later_minor_version(buf) {
                        // HTTP/1.2 to 1.9: served as the highest minor version this server
                        // implements (RFC 9110 §2.5), from a copy that says so (the same
                        // layout, so its spans hold for `buf`). Bounded: a longer head is
                        // too large anyway.
                        Some(digit) if digit <= config.max_head => {
                            let mut copy =
                                buf[..buf.len().min(config.max_head.saturating_add(1))].to_vec();
                            copy[digit] = b'1';
                            parse_head_by(&copy, config, head, valid_authority, try_canonical)
                        }
                        Some(_) => Err(Status::HEADERS_TOO_LARGE),
                        None => Err(version_error(buf)),
                    };
                }
                Err(_) => return Err(Status::BAD_REQUEST),
            };
            let (Some(method), Some(target), Some(minor_version)) =
                (request.method, request.path, request.version)
            else {
                return Err(Status::BAD_REQUEST);
            };
            let headers: &[httparse::Header<'_>] = request.headers;
            (
                len,
                method.as_bytes(),
                target.as_bytes(),
                minor_version,
                headers,
            )
        }
    };
    // Spans are `u32` offsets: a head that could not be described by them is too large
    // whatever `max_head` says.
    if len > config.max_head || u32::try_from(len).is_err() {
        return Err(Status::HEADERS_TOO_LARGE);
    }
    // Every part is inside the head's `len` bytes, so its offsets fit in `u32` (checked above).
    let offset = |s: &[u8]| {
        let start = s.as_ptr() as usize - buf.as_ptr() as usize;
        Span {
            start: start as u32,
            end: (start + s.len()) as u32,
        }
    };
    // The line ends after the target, a space, `HTTP/1.x` and CRLF (the position of its LF
    // is what the incomplete case compares).
    let line_start = offset(method).start;
    if (offset(target).end - line_start) as usize + 1 + 8 + 1 > config.max_request_line {
        return Err(Status::URI_TOO_LONG);
    }
    head.len = len as u32;
    head.method = offset(method);
    head.known_method = known_method(method);
    head.target = offset(target);
    head.minor_version = minor_version;
    head.headers.clear();
    head.framing = None;
    head.expect_continue = false;
    head.upgrade = false;
    let mut hosts = 0;
    let mut host: Option<&[u8]> = None;
    let mut content_length: Option<u64> = None;
    // Transfer codings over every Transfer-Encoding field, as one list (RFC 9112 §6.1).
    let mut transfer_encoding = false;
    let mut chunked_codings = 0;
    let mut other_codings = false;
    // Whether the last coding of the list (over every field) is chunked.
    let mut last_is_chunked = false;
    let mut close = false;
    let mut keep_alive_token = false;
    let mut upgrade_token = false;
    let mut upgrade_field = false;
    for header in headers {
        let (name, value) = (header.name.as_bytes(), header.value);
        head.headers.push((offset(name), offset(value)));
        // On the name's length first: most fields are none of these, and each is then
        // compared once instead of against every name in turn.
        match name.len() {
            4 if name.eq_ignore_ascii_case(b"host") => {
                hosts += 1;
                host = Some(value);
            }
            14 if name.eq_ignore_ascii_case(b"content-length") => {
                let length = parse_content_length(value)?;
                if content_length.is_some_and(|previous| previous != length) {
                    return Err(Status::BAD_REQUEST);
                }
                content_length = Some(length);
            }
            17 if name.eq_ignore_ascii_case(b"transfer-encoding") => {
                transfer_encoding = true;
                let mut empty = true;
                for coding in tokens(value) {
                    empty = false;
                    last_is_chunked = coding.eq_ignore_ascii_case(b"chunked");
                    if last_is_chunked {
                        chunked_codings += 1;
                    } else {
                        other_codings = true;
                    }
                }
                if empty {
                    return Err(Status::BAD_REQUEST);
                }
            }
            10 if name.eq_ignore_ascii_case(b"connection") => {
                for token in tokens(value) {
                    close |= token.eq_ignore_ascii_case(b"close");
                    keep_alive_token |= token.eq_ignore_ascii_case(b"keep-alive");
                    upgrade_token |= token.eq_ignore_ascii_case(b"upgrade");
                }
            }
            6 if name.eq_ignore_ascii_case(b"expect") => {
                head.expect_continue = value.eq_ignore_ascii_case(b"100-continue");
            }
            7 if name.eq_ignore_ascii_case(b"upgrade") => upgrade_field = true,
            _ => {}
        }
    }
    if hosts > 1 || (minor_version == 1 && hosts == 0) {
        return Err(Status::BAD_REQUEST);
    }
    // The authority: an absolute-form target's replaces Host; either must be a valid
    // `uri-host [ ":" port ]`.
    let absolute = absolute_form_authority(target);
    if !is_request_target(method, target, absolute) {
        return Err(Status::BAD_REQUEST);
    }
    // Each checked once (most requests: Host alone, the same as the last request's).
    let invalid = |authority: &[u8]| authority != valid_authority && !is_valid_authority(authority);
    if absolute.is_some_and(invalid) || host.is_some_and(invalid) {
        return Err(Status::BAD_REQUEST);
    }
    head.authority = absolute.or(host).map(offset);
    // Transfer codings, judged as one list over every field (RFC 9112 §6): beside a
    // Content-Length they are a smuggling attempt or a broken intermediary (§6.3), HTTP/1.0
    // has none, chunked twice is never valid, and without chunked last the body's length
    // cannot be known (§6.3). What remains is chunked, after codings this server does not
    // decode (501, §6.1) or alone.
    if transfer_encoding {
        if content_length.is_some() || minor_version == 0 || chunked_codings > 1 || !last_is_chunked
        {
            return Err(Status::BAD_REQUEST);
        }
        if other_codings {
            return Err(Status::NOT_IMPLEMENTED);
        }
    }
    if let Some(length) = content_length {
        if length > config.max_body {
            return Err(Status::CONTENT_TOO_LARGE);
        }
        head.framing = Some(Framing::Length(length));
    } else if transfer_encoding {
        head.framing = Some(Framing::Chunked);
    }
    head.keep_alive = if minor_version == 1 {
        !close
    } else {
        keep_alive_token && !close
    };
    head.expect_continue &= minor_version == 1;
    head.upgrade = minor_version == 1 && upgrade_token && upgrade_field;
    Ok(true)
}

/// Header fields a canonical head may have (a browser sends a dozen or so): the array
/// httparse fills there is initialized, so it is kept small.
const COMMON_HEADERS: usize = 24;

/// A parsed head: its length, method, target, minor version and header fields.
type Parsed<'b, 'h> = (usize, &'b [u8], &'b [u8], u8, &'h [httparse::Header<'b>]);

/// The common head, complete: `method SP target SP HTTP/1.x CRLF` with a token method and
/// a target of visible ASCII, its fields parsed by httparse as it parses a request's.
/// httparse's own request-line parser checks the target as UTF-8, which was a tenth of a
/// pipelined request's instructions; this line needs no such check. `None` for anything
/// else (leading empty lines, other bytes or forms, an incomplete or malformed head, more
/// fields than `headers`): httparse then parses the whole head and judges it, so what is
/// accepted, and how, is httparse's either way.
fn canonical_head<'b, 'h>(
    buf: &'b [u8],
    headers: &'h mut [httparse::Header<'b>],
) -> Option<Parsed<'b, 'h>> {
    let method_end = crate::chars::find_byte(&buf[..buf.len().min(16)], b' ')?;
    let method = &buf[..method_end];
    if !crate::chars::is_token(method) {
        return None;
    }
    let rest = &buf[method_end + 1..];
    let target = &rest[..crate::chars::find_byte(rest, b' ')?];
    if target.is_empty() || !crate::chars::is_visible_ascii(target) {
        return None;
    }
    let minor_version = match rest.get(target.len() + 1..target.len() + 11)? {
        b"HTTP/1.1\r\n" => 1,
        b"HTTP/1.0\r\n" => 0,
        _ => return None,
    };
    let line_len = method_end + 1 + target.len() + 11;
    match httparse::parse_headers(&buf[line_len..], headers) {
        Ok(httparse::Status::Complete((len, headers))) => {
            Some((line_len + len, method, target, minor_version, headers))
        }
        _ => None,
    }
}

/// RFC 9110's methods, by index: a byte in every head rather than a `&str`.
const KNOWN_METHODS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
];

/// One of [`KNOWN_METHODS`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct KnownMethod(u8);

impl KnownMethod {
    pub(crate) const HEAD: KnownMethod = KnownMethod(1);

    pub(crate) fn as_str(self) -> &'static str {
        KNOWN_METHODS[usize::from(self.0)]
    }
}

fn known_method(method: &[u8]) -> Option<KnownMethod> {
    // A match, not a search of `KNOWN_METHODS`: the compiler dispatches on the length and
    // compares in registers (the search's `memcmp` calls showed in a pipelined profile).
    let index = match method {
        b"GET" => 0,
        b"HEAD" => 1,
        b"POST" => 2,
        b"PUT" => 3,
        b"DELETE" => 4,
        b"CONNECT" => 5,
        b"OPTIONS" => 6,
        b"TRACE" => 7,
        b"PATCH" => 8,
        _ => return None,
    };
    Some(KnownMethod(index))
}

/// Where the minor digit of an `HTTP/1.2` to `HTTP/1.9` request line sits in `buf`: a
/// version httparse refuses, but one an HTTP/1.1 server answers as 1.1.
fn later_minor_version(buf: &[u8]) -> Option<usize> {
    let start = buf.iter().position(|&b| b != b'\r' && b != b'\n')?;
    let line = &buf[start..];
    let line = &line[..line.iter().position(|&b| b == b'\n')?];
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    // `method SP target SP version`, as `version_error` reads it.
    if line.iter().filter(|&&b| b == b' ').count() != 2 {
        return None;
    }
    match line.rsplit(|&b| b == b' ').next()? {
        [b'H', b'T', b'T', b'P', b'/', b'1', b'.', b'2'..=b'9'] => Some(start + line.len() - 1),
        _ => None,
    }
}

/// `HTTP/2.0` and friends: well-formed but unsupported (505); anything else is malformed.
fn version_error(buf: &[u8]) -> Status {
    let line = buf.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    // `method SP target SP version`: a line with more spaces is malformed (a space in the
    // target), whatever its last word says.
    if line.iter().filter(|&&b| b == b' ').count() != 2 {
        return Status::BAD_REQUEST;
    }
    match line.rsplit(|&b| b == b' ').next() {
        Some([b'H', b'T', b'T', b'P', b'/', major, b'.', minor])
            if major.is_ascii_digit() && minor.is_ascii_digit() =>
        {
            Status::VERSION_NOT_SUPPORTED
        }
        Some([b'H', b'T', b'T', b'P', b'/', major]) if major.is_ascii_digit() => {
            Status::VERSION_NOT_SUPPORTED
        }
        _ => Status::BAD_REQUEST,
    }
}

/// A plain decimal, at most 18 digits past its leading zeros (no sign, no list, no
/// whitespace inside).
pub(crate) fn parse_content_length(value: &[u8]) -> Result<u64, Status> {
    let significant = crate::chars::without_leading_zeros(value).len();
    if value.is_empty() || significant > 18 || !value.iter().all(u8::is_ascii_digit) {
        return Err(Status::BAD_REQUEST);
    }
    Ok(value
        .iter()
        .fold(0u64, |n, &digit| n * 10 + u64::from(digit - b'0')))
}

/// The comma-separated tokens of a field value, trimmed.
pub(crate) fn tokens(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(|token| token.trim_ascii())
        .filter(|token| !token.is_empty())
}

/// The authority of an absolute-form target (`scheme://authority/path?query`), if it is one.
fn absolute_form_authority(target: &[u8]) -> Option<&[u8]> {
    if target.first() == Some(&b'/') {
        return None;
    }
    let scheme_end = target.windows(3).position(|w| w == b"://")?;
    let scheme = &target[..scheme_end];
    if scheme.is_empty()
        || !scheme
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(b))
    {
        return None;
    }
    let rest = &target[scheme_end + 3..];
    let end = rest
        .iter()
        .position(|&b| matches!(b, b'/' | b'?' | b'#'))
        .unwrap_or(rest.len());
    Some(&rest[..end])
}

/// One of RFC 9112 §3.2's request-target forms, without a fragment: origin-form (`/...`,
/// nearly every request: one search for `#`), absolute-form (`scheme://authority...`, whose
/// host may not be empty, RFC 9110 §4.2.1), authority-form, which is CONNECT's and only
/// CONNECT's, and asterisk-form (`*`), which is OPTIONS' alone (§3.2.4). (Authorities are
/// checked as `uri-host[:port]` after this, which refuses a port without a host.)
fn is_request_target(method: &[u8], target: &[u8], absolute: Option<&[u8]>) -> bool {
    if crate::chars::find_byte(target, b'#').is_some() {
        return false;
    }
    if method == b"CONNECT" {
        return absolute.is_none() && !target.is_empty() && is_valid_authority(target);
    }
    match absolute {
        _ if target.first() == Some(&b'/') => true,
        Some(authority) => !authority.is_empty(),
        None => target == b"*" && method == b"OPTIONS",
    }
}

/// RFC 3986 `uri-host [ ":" port ]` as RFC 9112 §3.2 wants in Host (and in an absolute-form
/// target, where a userinfo `@` is refused too): a reg-name (unreserved, pct-encoded,
/// sub-delims), an IPv4 address (which is one), or an IP literal in brackets. Empty is
/// valid (a target without authority).
pub(crate) fn is_valid_authority(value: &[u8]) -> bool {
    let (host, port) = if let Some(literal) = value.strip_prefix(b"[") {
        let Some(close) = literal.iter().position(|&b| b == b']') else {
            return false;
        };
        if !is_ip_literal(&literal[..close]) {
            return false;
        }
        match &literal[close + 1..] {
            [] => return true,
            [b':', port @ ..] => (&[][..], port),
            _ => return false,
        }
    } else {
        match value.iter().rposition(|&b| b == b':') {
            // A port without a host names nothing.
            Some(0) => return false,
            Some(colon) => (&value[..colon], &value[colon + 1..]),
            None => (value, &[][..]),
        }
    };
    // Without early exit, so the loops vectorize (this runs for every request's Host).
    let host_ok = host.iter().fold(true, |ok, &b| ok & REG_NAME[b as usize]);
    let port_ok = port.iter().fold(true, |ok, &b| ok & b.is_ascii_digit());
    let pct = host.iter().fold(false, |pct, &b| pct | (b == b'%'));
    host_ok && port_ok && (!pct || pct_encodings_are_complete(host))
}

/// What RFC 3986's `IP-literal` holds between its brackets: an IPv6 address, or `IPvFuture`
/// (`v` 1*HEXDIG `.` 1*( unreserved / sub-delims / `:` )).
fn is_ip_literal(inside: &[u8]) -> bool {
    if let Some(future) = inside.strip_prefix(b"v").or(inside.strip_prefix(b"V")) {
        let Some(dot) = future.iter().position(|&b| b == b'.') else {
            return false;
        };
        let (version, rest) = (&future[..dot], &future[dot + 1..]);
        return !version.is_empty()
            && version.iter().all(u8::is_ascii_hexdigit)
            && !rest.is_empty()
            && rest
                .iter()
                .all(|&b| b == b':' || (b != b'%' && REG_NAME[b as usize]));
    }
    std::str::from_utf8(inside).is_ok_and(|text| text.parse::<std::net::Ipv6Addr>().is_ok())
}

/// Every `%` starts `%XX` with two hex digits.
fn pct_encodings_are_complete(host: &[u8]) -> bool {
    host.iter().enumerate().all(|(i, &b)| {
        b != b'%'
            || (host.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && host.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(request: &str) -> Result<Head, Status> {
        let mut head = Head::default();
        match parse_head(request.as_bytes(), &Config::default(), &mut head, b"") {
            Ok(true) => Ok(head),
            Ok(false) => Err(Status(0)),
            Err(status) => Err(status),
        }
    }

    fn status(request: &str) -> u16 {
        parse(request).err().map_or(200, |s| s.0)
    }

    #[test]
    fn accepts_a_plain_request() {
        let head = parse("GET /a?b=c HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        assert_eq!(head.minor_version, 1);
        assert!(head.keep_alive);
        assert_eq!(head.framing(), Framing::Length(0));
    }

    #[test]
    fn content_length_leading_zeros_do_not_count() {
        let length = |value: &str| {
            parse(&format!(
                "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {value}\r\n\r\n"
            ))
            .map(|head| head.framing())
        };
        assert_eq!(length("00000000000000000005"), Ok(Framing::Length(5)));
        assert_eq!(length("000000000000000000000"), Ok(Framing::Length(0)));
        assert_eq!(length("1000000000000000000"), Err(Status::BAD_REQUEST));
    }

    #[test]
    fn framing_rules() {
        assert_eq!(
            status("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"),
            400
        );
        assert_eq!(
            status("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n"),
            200
        );
        assert_eq!(
            status("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n"),
            400
        );
        assert_eq!(
            status("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +1\r\n\r\n"),
            400
        );
        assert_eq!(
            status("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1,1\r\n\r\n"),
            400
        );
        assert_eq!(
            status("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n"),
            400
        );
        assert_eq!(
            status("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999\r\n\r\n"),
            413
        );
        assert_eq!(status("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"), 400);
        // Chunked not last: the length is unknown, 400 (RFC 9112 §6.3).
        assert_eq!(
            status("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n"),
            400
        );
        assert_eq!(
            status("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"),
            400
        );
        // A coding this server does not decode, even before chunked: 501.
        assert_eq!(
            status("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"),
            501
        );
        assert_eq!(
            status("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"),
            400
        );
    }

    #[test]
    fn transfer_codings_are_judged_over_all_fields() {
        let te = |fields: &str| {
            status(&format!(
                "POST / HTTP/1.1\r\nHost: x\r\n{fields}\r\n0\r\n\r\n"
            ))
        };
        assert_eq!(te("Transfer-Encoding: chunked\r\n"), 200);
        assert_eq!(
            te("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n"),
            400
        );
        assert_eq!(te("Transfer-Encoding: chunked, chunked\r\n"), 400);
        assert_eq!(
            te("Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip, chunked\r\n"),
            400
        );
        assert_eq!(
            te("Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n"),
            501
        );
        assert_eq!(
            te("Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n"),
            400
        );
        assert_eq!(te("Transfer-Encoding: ,\r\n"), 400);
        assert_eq!(
            te("Transfer-Encoding: chunked\r\nContent-Length: 0\r\n"),
            400
        );
    }

    #[test]
    fn absolute_form_authority_replaces_host() {
        let request = "GET http://internal/admin HTTP/1.1\r\nHost: public\r\n\r\n";
        let head = parse(request).unwrap();
        assert_eq!(head.authority.unwrap().of(request.as_bytes()), b"internal");
        let request = "GET /a HTTP/1.1\r\nHost: public:8080\r\n\r\n";
        let head = parse(request).unwrap();
        assert_eq!(
            head.authority.unwrap().of(request.as_bytes()),
            b"public:8080"
        );
        assert_eq!(parse("GET / HTTP/1.0\r\n\r\n").unwrap().authority, None);
    }

    #[test]
    fn host_must_be_a_uri_host_and_port() {
        for good in [
            "",
            "a",
            "example.com",
            "example.com:80",
            "127.0.0.1:1",
            "[::1]",
            "[::1]:8080",
            "xn--bcher-kva.example",
            "a%20b",
            "a_b~c!$&'()*+,;=",
        ] {
            assert_eq!(
                status(&format!("GET / HTTP/1.1\r\nHost: {good}\r\n\r\n")),
                200,
                "{good:?}"
            );
        }
        for bad in [
            "a b",
            "a/b",
            "a@b",
            "[::1",
            "[::1]x",
            "a:b:c",
            "a:8o",
            "a%2",
            "a%zz",
            "a?b",
            "[]",
            ":80",
            ":",
            "[zz]",
            "[1:2]",
            "[::1%25eth0]",
            "[v1]",
            "[v.x]",
            "[vz.x]",
        ] {
            assert_eq!(
                status(&format!("GET / HTTP/1.1\r\nHost: {bad}\r\n\r\n")),
                400,
                "{bad:?}"
            );
        }
        for good in ["[v1.x:y]", "[::ffff:1.2.3.4]", "[2001:db8::7]:443"] {
            assert_eq!(
                status(&format!("GET / HTTP/1.1\r\nHost: {good}\r\n\r\n")),
                200,
                "{good:?}"
            );
        }
        assert_eq!(status("GET http://u@h/ HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
        assert_eq!(status("GET http://a^b/ HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
    }

    #[test]
    fn request_targets_have_one_of_the_four_forms() {
        let status_of = |method: &str, target: &str| {
            status(&format!("{method} {target} HTTP/1.1\r\nHost: h\r\n\r\n"))
        };
        for (method, target) in [
            ("GET", "/"),
            ("GET", "/a?b=c/d"),
            ("GET", "http://a/json"),
            ("GET", "https://a:8443"),
            ("GET", "ftp://a/json"),
            ("OPTIONS", "*"),
            ("CONNECT", "a:443"),
            ("CONNECT", "[::1]:443"),
        ] {
            assert_eq!(status_of(method, target), 200, "{method} {target}");
        }
        for (method, target) in [
            ("GET", "json"),
            ("GET", "a:80"),
            ("GET", "http:/json"),
            ("GET", "http:json"),
            ("GET", "/json#x"),
            ("GET", "http://a/json#f"),
            ("GET", "http:///json"),
            ("GET", "http://:80/json"),
            ("GET", "*"),
            ("CONNECT", ":443"),
            ("CONNECT", "/"),
            ("CONNECT", "http://a/"),
        ] {
            assert_eq!(status_of(method, target), 400, "{method} {target}");
        }
    }

    #[test]
    fn host_rules() {
        assert_eq!(status("GET / HTTP/1.1\r\n\r\n"), 400);
        assert_eq!(status("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"), 400);
        assert_eq!(status("GET / HTTP/1.0\r\n\r\n"), 200);
    }

    #[test]
    fn malformed_heads_are_400() {
        for bad in [
            "GET / HTTP/1.1\r\nHost : x\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: x\0y\r\n\r\n",
            "GET / HTTP/1.1\r\nHo\rst: x\r\n\r\n",
            "GET  / HTTP/1.1\r\nHost: x\r\n\r\n",
            "G@T / HTTP/1.1\r\nHost: x\r\n\r\n",
        ] {
            assert_eq!(status(bad), 400, "{bad:?}");
        }
    }

    #[test]
    fn request_line_limit_is_the_same_for_complete_and_incomplete_heads() {
        let limit = Config::default().max_request_line;
        // `GET /aaa HTTP/1.1\r\n`: the LF sits at index `line - 1`.
        for (line, expected) in [(limit, 200), (limit + 1, 200), (limit + 2, 414)] {
            let target = "a".repeat(line - "GET / HTTP/1.1\r\n".len());
            let request = format!("GET /{target} HTTP/1.1\r\nHost: x\r\n\r\n");
            assert_eq!(status(&request), expected, "complete, line of {line} bytes");
            // Cut before the head ends: incomplete (0) or already too long.
            let cut = &request[..line + 3];
            let incomplete = if expected == 414 { 414 } else { 0 };
            assert_eq!(status(cut), incomplete, "incomplete, line of {line} bytes");
        }
    }

    /// Empty lines before the request line are skipped (RFC 9112 §2.2): they do not count
    /// against the request line's limit, complete or not (5,000 of them read as a 414).
    #[test]
    fn empty_lines_before_the_request_line_are_not_part_of_it() {
        let limit = Config::default().max_request_line;
        let blank = "\r\n".repeat(5000);
        assert_eq!(
            status(&format!("{blank}GET / HTTP/1.1\r\nHost: x\r\n\r\n")),
            200
        );
        let target = "a".repeat(limit - "GET / HTTP/1.1\r\n".len());
        let longest = format!("{blank}GET /{target} HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(
            status(&longest),
            200,
            "a line at the limit after empty lines"
        );
        let too_long = format!("{blank}GET /aa{target} HTTP/1.1\r\nHost: x");
        assert_eq!(
            status(&too_long),
            414,
            "incomplete, too long after empty lines"
        );
        assert_eq!(
            status(&format!("{too_long}\r\n\r\n")),
            414,
            "complete, too long"
        );
    }

    /// Mutated heads under small, random limits: whatever the bytes and the limits, a head is
    /// parsed, judged incomplete or refused with a status — never a panic (a later minor
    /// version under a `max_head` shorter than the request line once indexed out of bounds),
    /// and a parsed head's spans lie inside the bytes.
    #[test]
    fn mutated_heads_under_small_limits_never_panic() {
        let seeds: [&[u8]; 5] = [
            b"GET /a?b HTTP/1.1\r\nHost: x:80\r\nAccept: */*\r\n\r\n",
            b"POST /echo HTTP/1.2\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
            b"\r\nGET http://h/p HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
            b"PUT / HTTP/1.9\r\nHost: y\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            b"OPTIONS * HTTP/1.1\r\nHost: z\r\nExpect: 100-continue\r\nUpgrade: a\r\n\r\n",
        ];
        let mut mutator = crate::mutate::Mutator::new(
            0x9E37_79B9_7F4A_7C15,
            b"\r\n :/?*.#%-019AHTPaxz\t\x00\x7f\xff",
        );
        for _ in 0..20_000 {
            let mut bytes = seeds[mutator.below(seeds.len())].to_vec();
            mutator.mutate(&mut bytes, 1);
            let config = Config::default()
                .max_head(mutator.below(64))
                .max_request_line(mutator.below(48))
                .max_headers(mutator.below(4));
            let mut head = Head::default();
            if let Ok(true) = parse_head(&bytes, &config, &mut head, b"x") {
                assert!(head.len as usize <= bytes.len());
                for (name, value) in &head.headers {
                    assert!(name.end as usize <= bytes.len() && value.end as usize <= bytes.len());
                }
            }
        }
    }

    #[test]
    fn versions_and_limits() {
        assert_eq!(status("GET / HTTP/2.0\r\nHost: x\r\n\r\n"), 505);
        // A later HTTP/1.x is read as 1.1 (RFC 9110 §2.5), its spans those of the bytes sent;
        // 1.10 is not a version (one digit each).
        for later in [
            "GET /v HTTP/1.2\r\nHost: x\r\n\r\n",
            "\r\nGET /v HTTP/1.9\nHost: x\n\n",
        ] {
            let head = parse(later).unwrap();
            assert_eq!(head.minor_version, 1, "{later:?}");
            assert!(head.keep_alive);
            assert_eq!(head.target.of(later.as_bytes()), b"/v");
            assert_eq!(head.len as usize, later.len());
        }
        assert_eq!(status("GET / HTTP/1.10\r\nHost: x\r\n\r\n"), 400);
        // A head limit shorter than the request line: too large, whatever its version.
        let mut head = Head::default();
        let short = Config::default().max_head(8);
        let line = b"GET /abcdefgh HTTP/1.2\r\nHost: x\r\n\r\n";
        assert_eq!(
            parse_head(line, &short, &mut head, b""),
            Err(Status::HEADERS_TOO_LARGE)
        );
        assert_eq!(status("GET / HTTP/1.2\r\n\r\n"), 400, "1.1 rules: Host");
        assert_eq!(status("GET * HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
        assert_eq!(status("OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n"), 200);
        // A space in the target: malformed, not a version httparse could not read.
        assert_eq!(status("GET /a b HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
        assert_eq!(status("GET http://a b/ HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
        let long_uri = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(9000));
        assert_eq!(status(&long_uri), 414);
        let many = format!(
            "GET / HTTP/1.1\r\nHost: x\r\n{}\r\n",
            "A: b\r\n".repeat(100)
        );
        assert_eq!(status(&many), 431);
        let big = format!(
            "GET / HTTP/1.1\r\nHost: x\r\nA: {}\r\n\r\n",
            "b".repeat(40_000)
        );
        assert_eq!(status(&big), 431);
    }

    #[test]
    fn connection_semantics() {
        assert!(
            !parse("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .unwrap()
                .keep_alive
        );
        assert!(!parse("GET / HTTP/1.0\r\n\r\n").unwrap().keep_alive);
        assert!(
            parse("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n")
                .unwrap()
                .keep_alive
        );
        assert!(
            parse(
                "POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n"
            )
            .unwrap()
            .expect_continue
        );
    }

    #[test]
    fn the_canonical_path_parses_as_httparse_does() {
        let seeds: [&[u8]; 12] = [
            b"GET /plaintext HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n",
            b"POST /echo?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\nhello",
            b"PUT /u HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            b"GET http://a:80/x HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
            b"OPTIONS * HTTP/1.1\r\nHost: a\r\nUpgrade: h2c\r\nConnection: Upgrade, close\r\n\r\n",
            b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n",
            b"\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
            b"GET / HTTP/1.1\nHost: a\n\n",
            b"GET /\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n",
            b"GET / HTTP/2.0\r\nHost: a\r\n\r\n",
            b"M-SEARCH * HTTP/1.1\r\nHost: a\r\nX: \t v\x80\r\n\r\n",
            b"GET /a b HTTP/1.1\r\nHost: a\r\n\r\n",
        ];
        let mut fields = b"GET / HTTP/1.1\r\nHost: a\r\n".to_vec();
        for n in 0..30 {
            fields.extend_from_slice(format!("X-{n}: {n}\r\n").as_bytes());
        }
        fields.extend_from_slice(b"\r\n");
        let configs = [Config::default(), Config::default().max_headers(3)];
        let answer = |buf: &[u8], config: &Config, canonical: bool| {
            let mut head = Head::default();
            let result = parse_head_by(buf, config, &mut head, b"", canonical);
            format!("{result:?} {head:?}")
        };
        let bytes: [u8; 10] = [b' ', b'\r', b'\n', b'\t', b':', 0, 0x7f, 0x80, b'/', b'a'];
        let mut checked = 0;
        for seed in seeds.iter().copied().chain([&fields[..]]) {
            // Every prefix (incomplete heads), then every byte replaced by each of `bytes`.
            let mut cases: Vec<Vec<u8>> = (0..=seed.len()).map(|n| seed[..n].to_vec()).collect();
            for at in 0..seed.len() {
                for &b in &bytes {
                    let mut case = seed.to_vec();
                    case[at] = b;
                    cases.push(case);
                }
            }
            for case in &cases {
                for config in &configs {
                    assert_eq!(
                        answer(case, config, true),
                        answer(case, config, false),
                        "{:?}",
                        String::from_utf8_lossy(case)
                    );
                    checked += 1;
                }
            }
        }
        assert!(checked > 10_000, "{checked}");
    }

    #[test]
    fn known_methods_map_to_themselves() {
        for method in KNOWN_METHODS {
            assert_eq!(
                known_method(method.as_bytes()).map(KnownMethod::as_str),
                Some(method)
            );
        }
        for other in ["get", "GETS", "PROPFIND", ""] {
            assert_eq!(known_method(other.as_bytes()), None, "{other:?}");
        }
    }

    #[test]
    fn partial_heads_wait() {
        let mut head = Head::default();
        assert_eq!(
            parse_head(b"GET / HTTP/1.1\r\nHo", &Config::default(), &mut head, b""),
            Ok(false)
        );
    }
}
