//! `Request`: a view of the request head (borrowing the connection's buffer) and its body.

use std::fmt;
use std::net::SocketAddr;

use ringhop_pipes::ConnInfo;

use crate::body::Body;
use crate::parse::{Framing, Head, Span};

/// An HTTP request as the handler sees it. The head borrows the connection's buffer; the
/// body reads straight from the connection.
pub struct Request<'a> {
    /// The bytes `head` was parsed from: its spans index them, and its target is UTF-8 there.
    pub(crate) buf: &'a [u8],
    pub(crate) head: &'a Head,
    pub(crate) conn: &'a ConnInfo,
    pub(crate) body: Body<'a>,
}

impl<'a> Request<'a> {
    fn slice(&self, span: &Span) -> &'a [u8] {
        span.of(self.buf)
    }

    /// The method, e.g. `GET`.
    pub fn method(&self) -> &'a str {
        if let Some(known) = self.head.known_method {
            return known.as_str();
        }
        std::str::from_utf8(self.slice(&self.head.method)).unwrap_or_default()
    }

    /// The method is one of RFC 9110's (GET, HEAD, POST, PUT, DELETE, CONNECT, OPTIONS,
    /// TRACE, PATCH).
    pub(crate) fn has_standard_method(&self) -> bool {
        self.head.known_method.is_some()
    }

    /// The request target as sent (origin-form `/a?b`, absolute-form `http://h/a?b`, ...).
    pub fn target(&self) -> &'a str {
        let target = self.slice(&self.head.target);
        debug_assert!(std::str::from_utf8(target).is_ok());
        // SAFETY: `buf` is the buffer `head` was parsed from (the connection's head buffer,
        // see `conn::parse_result`), and httparse returned these very bytes as a `&str`: it
        // validated them as UTF-8 already (validating again showed in pipelined profiles).
        unsafe { std::str::from_utf8_unchecked(target) }
    }

    /// The path: the target without query, and without scheme and authority for
    /// absolute-form targets.
    pub fn path(&self) -> &'a str {
        let target = self.target();
        // Origin-form (`/a?b`), by far the most common, skips the absolute-form search.
        let target = if target.starts_with('/') {
            target
        } else {
            match target.split_once("://") {
                Some((scheme, rest)) if !scheme.contains('/') => {
                    rest.find('/').map_or("/", |slash| &rest[slash..])
                }
                _ => target,
            }
        };
        match crate::chars::find_byte(target.as_bytes(), b'?') {
            Some(query) => &target[..query],
            None => target,
        }
    }

    /// The request's authority (`host[:port]`): an absolute-form target's authority, which
    /// replaces Host (RFC 9112 §3.2.2), else the `Host` field; `None` for an HTTP/1.0
    /// request without either. This, not `header("host")` (kept as sent, as hyper does),
    /// is what virtual hosting must look at, so that the host and [`path`](Self::path) always
    /// come from the same target. Both were checked to be a valid `uri-host[:port]`.
    pub fn authority(&self) -> Option<&'a str> {
        let range = self.head.authority.as_ref()?;
        // Checked to be ASCII by the parser.
        std::str::from_utf8(self.slice(range)).ok()
    }

    /// The query string after `?`, if any.
    pub fn query(&self) -> Option<&'a str> {
        self.target().split_once('?').map(|(_, query)| query)
    }

    /// `(1, 0)` or `(1, 1)`.
    pub fn version(&self) -> (u8, u8) {
        (1, self.head.minor_version)
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&'a [u8]> {
        self.headers()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, value)| value)
    }

    /// All header fields, in order, as `(name, value)`.
    pub fn headers(&self) -> impl Iterator<Item = (&'a str, &'a [u8])> + '_ {
        self.head.headers.iter().map(|(name, value)| {
            (
                std::str::from_utf8(self.slice(name)).unwrap_or_default(),
                self.slice(value),
            )
        })
    }

    /// The declared body length (`None` for chunked bodies).
    pub fn content_length(&self) -> Option<u64> {
        match self.head.framing() {
            Framing::Length(length) => Some(length),
            Framing::Chunked => None,
        }
    }

    /// The client's address (`None` if the socket could no longer tell).
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.conn.peer_addr
    }

    /// The address the connection was accepted on.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.conn.local_addr
    }

    /// Everything known about the connection: addresses and, over HTTPS, what TLS
    /// negotiated ([`ConnInfo::tls`]: SNI, ALPN, version).
    pub fn conn_info(&self) -> &'a ConnInfo {
        self.conn
    }

    /// The body, to read as a stream of chunks.
    pub fn body(&mut self) -> &mut Body<'a> {
        &mut self.body
    }
}

impl Request<'_> {
    /// Copies the head into an [`http::Request`] (method, URI, version, headers), for code
    /// written against the `http` crate. Allocates; the body stays in [`Request::body`].
    pub fn to_http(&self) -> Result<http::Request<()>, http::Error> {
        let mut builder = http::Request::builder()
            .method(self.method())
            .uri(self.target())
            .version(if self.head.minor_version == 0 {
                http::Version::HTTP_10
            } else {
                http::Version::HTTP_11
            });
        for (name, value) in self.headers() {
            builder = builder.header(name, value);
        }
        builder.body(())
    }
}

impl fmt::Debug for Request<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("method", &self.method())
            .field("target", &self.target())
            .field("version", &self.version())
            .finish()
    }
}
