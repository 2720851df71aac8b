//! Limits and timeouts of the HTTP server.

use std::time::Duration;

pub use ringhop_pipes::{Linger, MinDataRate};

/// Limits and timeouts; the defaults suit a server on the internet.
///
/// ```
/// use std::time::Duration;
/// let config = ringhop_http::Config::default()
///     .max_body(1 << 20)
///     .header_timeout(Duration::from_secs(10));
/// assert_eq!(config.max_headers, 100);
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Config {
    /// Longest request line, counted up to its LF (method, target, version and the CR): beyond
    /// it, 414. Default 8 KiB.
    pub max_request_line: usize,
    /// Largest header section (request line included): beyond it, 431. Default 32 KiB.
    pub max_head: usize,
    /// Most header fields: beyond it, 431. Default 100 (at most 256).
    pub max_headers: usize,
    /// Largest request body: a larger declared length gets 413 before anything is read, a
    /// larger chunked body 413 when it gets there. Default 16 MiB.
    pub max_body: u64,
    /// Total bytes of chunk extensions (`;name=value` after a chunk size) one chunked body
    /// may carry: beyond it, 400. Default 16 KiB (hyper's figure).
    pub max_chunk_extensions: usize,
    /// Largest trailer section of a chunked body: beyond it, 431 (as for one field over
    /// 4 KiB, the longest line a chunked body may have). Default 16 KiB.
    pub max_trailers: usize,
    /// Most trailer fields: beyond it, 431. Default 100.
    pub max_trailer_fields: usize,
    /// Time from a request's first byte to the end of its header section: beyond it, 408.
    /// Also the longest a new connection may wait before its first byte (then it is closed
    /// without a response; later waits between requests are `idle_timeout`'s). Default 30 s.
    pub header_timeout: Duration,
    /// Time a keep-alive connection may sit idle between requests before it is closed.
    /// Default 120 s.
    pub idle_timeout: Duration,
    /// On shutdown, how long in-flight requests may take before their connections are
    /// dropped. Default 10 s.
    pub drain_timeout: Duration,
    /// Unread request body the server reads and discards after a handler to keep the
    /// connection; more than this, and the connection is closed instead (when the declared
    /// length is already over it, the response says `Connection: close`). Default 256 KiB.
    pub max_drain: u64,
    /// Once a connection is done (an error answer, `Connection: close`, a timeout), how
    /// long its socket stays open after the last byte and the FIN went out, reading and
    /// discarding input until the client's FIN: bounded in time and bytes, default 2 s or
    /// 16 MiB, whichever comes first. Closing with unread input at once would send an RST
    /// that can destroy the answer the client has not read yet.
    pub linger: Linger,
    /// The slowest a client may take the server's output (it stopped reading, or reads a
    /// trickle): measured in windows of the grace period while output waits to be sent;
    /// below it the connection is reset and its pipes released. Default 240 B/s after 5 s
    /// (Kestrel's); `None` disables it.
    pub min_response_data_rate: Option<MinDataRate>,
    /// The slowest a client may send a request body, counted only while the handler waits
    /// for body bytes, in windows of the grace period of that waiting time (the bytes that
    /// come in each window must pay for it: a burst does not pay for a stall after it):
    /// below it the request is answered 408 (or, if the response started, the connection
    /// is cut). Default 240 B/s after 5 s (Kestrel's); `None` disables it.
    pub min_request_body_data_rate: Option<MinDataRate>,
    /// HTTP/2 (hyper server): keep-alive pings that detect a dead peer. Default every 30 s,
    /// closed if the answer takes over 20 s; `None` sends none.
    pub http2_keep_alive: Option<KeepAlive>,
    /// Most connections open at once per server; each reactor takes an equal share and, at
    /// it, stops accepting until one of its connections closes (newcomers wait in the
    /// kernel's backlog). SO_REUSEPORT hashes new connections to reactors, so a reactor at
    /// its share strands its backlog even while others have room. Default (`None`): the
    /// fd limit less a tenth and 32.
    pub max_connections: Option<usize>,
}

/// HTTP/2 keep-alive pings: one every `interval` of silence, and the connection is closed
/// when one is not answered within `timeout`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeepAlive {
    /// Silence before a ping.
    pub interval: Duration,
    /// How long an answer may take.
    pub timeout: Duration,
}

impl Default for KeepAlive {
    fn default() -> Self {
        KeepAlive {
            interval: Duration::from_secs(30),
            timeout: Duration::from_secs(20),
        }
    }
}

/// The header array httparse fills lives on the stack; this is its size.
pub(crate) const HEADER_CAPACITY: usize = 256;

impl Default for Config {
    fn default() -> Self {
        Config {
            max_request_line: 8 * 1024,
            max_head: 32 * 1024,
            max_headers: 100,
            max_body: 16 * 1024 * 1024,
            max_chunk_extensions: 16 * 1024,
            max_trailers: 16 * 1024,
            max_trailer_fields: 100,
            header_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(120),
            drain_timeout: Duration::from_secs(10),
            max_drain: 256 * 1024,
            linger: Linger::default(),
            min_response_data_rate: Some(MinDataRate::default()),
            min_request_body_data_rate: Some(MinDataRate::default()),
            http2_keep_alive: Some(KeepAlive::default()),
            max_connections: None,
        }
    }
}

impl Config {
    /// Sets [`Config::max_request_line`].
    pub fn max_request_line(mut self, bytes: usize) -> Self {
        self.max_request_line = bytes;
        self
    }
    /// Sets [`Config::max_head`].
    pub fn max_head(mut self, bytes: usize) -> Self {
        self.max_head = bytes;
        self
    }
    /// Sets [`Config::max_headers`] (clamped to 256).
    pub fn max_headers(mut self, count: usize) -> Self {
        self.max_headers = count.clamp(1, HEADER_CAPACITY);
        self
    }
    /// Sets [`Config::max_body`].
    pub fn max_body(mut self, bytes: u64) -> Self {
        self.max_body = bytes;
        self
    }
    /// Sets [`Config::max_chunk_extensions`].
    pub fn max_chunk_extensions(mut self, bytes: usize) -> Self {
        self.max_chunk_extensions = bytes;
        self
    }
    /// Sets [`Config::max_trailers`].
    pub fn max_trailers(mut self, bytes: usize) -> Self {
        self.max_trailers = bytes;
        self
    }
    /// Sets [`Config::max_trailer_fields`].
    pub fn max_trailer_fields(mut self, count: usize) -> Self {
        self.max_trailer_fields = count;
        self
    }
    /// Sets [`Config::header_timeout`].
    pub fn header_timeout(mut self, timeout: Duration) -> Self {
        self.header_timeout = timeout;
        self
    }
    /// Sets [`Config::idle_timeout`].
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }
    /// Sets [`Config::linger`].
    pub fn linger(mut self, linger: Linger) -> Self {
        self.linger = linger;
        self
    }
    /// Sets [`Config::min_response_data_rate`].
    pub fn min_response_data_rate(mut self, rate: Option<MinDataRate>) -> Self {
        self.min_response_data_rate = rate;
        self
    }
    /// Sets [`Config::min_request_body_data_rate`].
    pub fn min_request_body_data_rate(mut self, rate: Option<MinDataRate>) -> Self {
        self.min_request_body_data_rate = rate;
        self
    }
    /// Sets [`Config::http2_keep_alive`].
    pub fn http2_keep_alive(mut self, keep_alive: Option<KeepAlive>) -> Self {
        self.http2_keep_alive = keep_alive;
        self
    }
    /// Sets [`Config::max_connections`].
    pub fn max_connections(mut self, max: Option<usize>) -> Self {
        self.max_connections = max;
        self
    }
    /// The connection cap of each of `reactors` reactors.
    pub(crate) fn connections_per_reactor(&self, reactors: usize) -> usize {
        let max = self
            .max_connections
            .unwrap_or_else(crate::listen::default_max_connections);
        (max / reactors.max(1)).max(1)
    }
    /// Sets [`Config::drain_timeout`].
    pub fn drain_timeout(mut self, timeout: Duration) -> Self {
        self.drain_timeout = timeout;
        self
    }
}
