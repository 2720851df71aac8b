//! hyper 1.x on ringhop: an existing hyper `Service` served over reactor-bound pipes, HTTP/1.1
//! and HTTP/2 (chosen per connection by the client's preface), with the whole connection —
//! hyper's dispatcher, the service, HTTP/2 streams — polled on the connection's reactor.
//!
//! ```no_run
//! use std::convert::Infallible;
//! use hyper::{body::Incoming, Request, Response};
//! use ringhop_http::hyper::HyperServer;
//!
//! async fn hello(_req: Request<Incoming>) -> Result<Response<String>, Infallible> {
//!     Ok(Response::new("Hello, World!".to_owned()))
//! }
//!
//! let runtime = ringhop_runtime::Runtime::builder().build()?;
//! HyperServer::bind("127.0.0.1:8080".parse().unwrap())
//!     .run(&runtime, || hyper::service::service_fn(hello))?;
//! # Ok::<(), std::io::Error>(())
//! ```

mod body;
mod exec;
mod io;
mod streams;
mod timer;

use std::cell::Cell;
use std::error::Error as StdError;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::body::Body;
use hyper::server::conn::{http1, http2};
use hyper::service::Service;
use hyper::{Request, Response};

use ringhop_pipes::watchdog::{Deadline, Expired};
use ringhop_pipes::{Chain, ConnInfo, Middleware, TransportOptions};
use ringhop_runtime::{time, Runtime};

pub use body::{FromIncoming, RequestBody};
pub use exec::LocalExec;
pub use io::PipeIo;
pub use timer::ReactorTimer;

use crate::config::{Config, Linger, MinDataRate};
use crate::shutdown;
use streams::{CountRequests, Counted, InsertExtension, OpenStreams, RequestLimits, WithExtension};

/// hyper's HTTP/1 field count limit when none is set.
const HYPER_MAX_HEADERS: usize = 100;

type BoxError = Box<dyn StdError + Send + Sync>;

/// Serves a hyper service on every reactor of a runtime, under the same [`Config`] as the
/// native server (timeouts, linger, minimum data rates).
pub struct HyperServer<M = ()> {
    addr: SocketAddr,
    config: Config,
    handle_signals: bool,
    on_listening: Option<Box<dyn FnOnce(SocketAddr) + Send>>,
    extension: Option<MakeExtension>,
    middleware: M,
}

/// Makes, per connection, what inserts the configured extension into each request.
type MakeExtension = Arc<dyn Fn(&ConnInfo) -> InsertExtension + Send + Sync>;

impl HyperServer {
    /// A server for `addr` with [`Config::default`], SIGINT/SIGTERM handled.
    pub fn bind(addr: SocketAddr) -> HyperServer {
        HyperServer {
            addr,
            config: Config::default(),
            handle_signals: true,
            on_listening: None,
            extension: None,
            middleware: (),
        }
    }
}

impl<M: Middleware + Clone + Send> HyperServer<M> {
    /// Adds `next` to the connection's middleware chain, after the ones added before (the
    /// first added is nearest the socket). It runs on the connection's reactor before hyper
    /// sees the connection; an error from it closes the connection.
    pub fn middleware<N: Middleware + Clone + Send>(self, next: N) -> HyperServer<Chain<M, N>> {
        self.map_middleware(|chain| chain.then(next))
    }

    /// Serves HTTPS: puts `tls` first in the chain (nearest the socket), advertising `h2`,
    /// `http/1.1` and `http/1.0` by ALPN; each connection is then served as HTTP/2 or
    /// HTTP/1.x by what it negotiated (a client without ALPN: by its preface, as in
    /// cleartext).
    #[cfg(feature = "tls")]
    pub fn tls(
        self,
        tls: ringhop_pipes::tls::TlsAcceptor,
    ) -> HyperServer<Chain<ringhop_pipes::tls::TlsAcceptor, M>> {
        self.map_middleware(|chain| tls.alpn_protocols(ALPN).then(chain))
    }

    /// The same server with its chain replaced by `f(chain)`.
    fn map_middleware<N>(self, f: impl FnOnce(M) -> N) -> HyperServer<N> {
        HyperServer {
            addr: self.addr,
            config: self.config,
            handle_signals: self.handle_signals,
            on_listening: self.on_listening,
            extension: self.extension,
            middleware: f(self.middleware),
        }
    }

    /// Calls `callback` with the address once every reactor listens (before serving).
    pub fn on_listening(mut self, callback: impl FnOnce(SocketAddr) + Send + 'static) -> Self {
        self.on_listening = Some(Box::new(callback));
        self
    }

    /// Inserts `make(&conn_info)` (made once per connection, cloned per request) into every
    /// request's extensions: e.g. axum's `ConnectInfo`, so its extractor works as under
    /// `axum::serve(.., into_make_service_with_connect_info::<SocketAddr>())`:
    ///
    /// ```ignore
    /// HyperServer::bind(addr)
    ///     .request_extension(|info| axum::extract::ConnectInfo(info.peer_addr.unwrap()))
    /// ```
    ///
    /// Costs one allocation per request (hyper's extension map), none when not set.
    pub fn request_extension<T, F>(mut self, make: F) -> Self
    where
        T: Clone + Send + Sync + 'static,
        F: Fn(&ConnInfo) -> T + Send + Sync + 'static,
    {
        self.extension = Some(Arc::new(move |info: &ConnInfo| {
            let value = make(info);
            let insert: InsertExtension =
                Rc::new(move |extensions: &mut hyper::http::Extensions| {
                    extensions.insert(value.clone());
                });
            insert
        }));
        self
    }

    /// Limits and timeouts, as for the native server. hyper applies `header_timeout`
    /// (HTTP/1.1 heads, also between keep-alive requests, and the wait for the HTTP/2
    /// preface), `idle_timeout` (HTTP/2: no open stream for that long → GOAWAY),
    /// `http2_keep_alive`, `drain_timeout`, `linger`, `min_response_data_rate`,
    /// `min_request_body_data_rate` for services that take a [`RequestBody`], `max_head`
    /// (431; HTTP/2: the header list), and for HTTP/1.1 `max_headers` (431),
    /// `max_request_line` (414) and `max_body` against `Content-Length` (413). A chunked
    /// body's size, chunk extensions and trailers are left to hyper and the service.
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// HTTP/1.1 header read timeout (hyper's, on ringhop timers); sets
    /// [`Config::header_timeout`].
    pub fn header_read_timeout(mut self, timeout: Duration) -> Self {
        self.config.header_timeout = timeout;
        self
    }

    /// How long in-flight connections may take after a shutdown signal.
    pub fn drain_timeout(mut self, timeout: Duration) -> Self {
        self.config.drain_timeout = timeout;
        self
    }

    /// How long a finished connection's socket waits for the client's FIN (see
    /// [`Config::linger`]); default 2 s or 16 MiB.
    pub fn linger(mut self, linger: Linger) -> Self {
        self.config.linger = linger;
        self
    }

    /// The slowest a client may take hyper's output (see
    /// [`Config::min_response_data_rate`]); default 240 B/s after 5 s, `None` disables it.
    pub fn min_response_data_rate(mut self, rate: Option<MinDataRate>) -> Self {
        self.config.min_response_data_rate = rate;
        self
    }

    /// The slowest a client may send a request body (see
    /// [`Config::min_request_body_data_rate`]): enforced for services that take
    /// `Request<`[`RequestBody`]`>` (a body below it yields an error to the service, which
    /// typically answers 408, and the connection then closes); default 240 B/s after 5 s,
    /// `None` disables it.
    pub fn min_request_body_data_rate(mut self, rate: Option<MinDataRate>) -> Self {
        self.config.min_request_body_data_rate = rate;
        self
    }

    /// Whether `run` handles SIGINT/SIGTERM (default `true`); see
    /// [`trigger_shutdown`](crate::trigger_shutdown) otherwise.
    pub fn handle_signals(mut self, handle: bool) -> Self {
        self.handle_signals = handle;
        self
    }

    /// Binds on every reactor, then serves: each accepted connection gets
    /// `make_service()` (called on its reactor, so the service may be `!Send`). Returns after
    /// a graceful shutdown.
    ///
    /// The service's request body type `R` is hyper's [`Incoming`](hyper::body::Incoming)
    /// or [`RequestBody`] (which adds the minimum request body rate); it is inferred from
    /// the service. A service generic over its body (axum's `Router`) names it:
    /// `run::<_, _, RequestBody, _>(..)`.
    pub fn run<F, S, R, B>(self, runtime: &Runtime, make_service: F) -> std::io::Result<()>
    where
        F: Fn() -> S + Send + Clone + 'static,
        S: Service<Request<R>, Response = Response<B>> + 'static,
        R: FromIncoming,
        S::Future: 'static,
        S::Error: Into<BoxError>,
        B: Body + 'static,
        B::Error: Into<BoxError>,
    {
        self.run_with_info(runtime, move |_: &ConnInfo| make_service())
    }

    /// [`run`](Self::run) with a service made per connection from what is known about it
    /// (peer and local address, what TLS negotiated): e.g. to give axum's `ConnectInfo`
    /// extractor the peer's address (see the README's axum section).
    pub fn run_with_info<F, S, R, B>(
        self,
        runtime: &Runtime,
        make_service: F,
    ) -> std::io::Result<()>
    where
        F: Fn(&ConnInfo) -> S + Send + Clone + 'static,
        S: Service<Request<R>, Response = Response<B>> + 'static,
        R: FromIncoming,
        S::Future: 'static,
        S::Error: Into<BoxError>,
        B: Body + 'static,
        B::Error: Into<BoxError>,
    {
        let addr = self.addr;
        let config = self.config;
        let middleware = self.middleware;
        let cap = config.connections_per_reactor(runtime.handles().len());
        let transport = TransportOptions {
            linger: config.linger,
            min_send_rate: config.min_response_data_rate,
            ..TransportOptions::default()
        };
        let on_listening = self.on_listening;
        let extension = self.extension;
        crate::listen::run_on_every_reactor(
            runtime,
            addr,
            self.handle_signals,
            on_listening,
            move || {
                let make_service = make_service.clone();
                let config = Rc::new(config.clone());
                let drain_timeout = config.drain_timeout;
                let extension = extension.clone();
                let serve = move |pipe, info: ConnInfo| {
                    let insert = extension.as_ref().map(|make| make(&info));
                    let service = WithExtension::new(make_service(&info), insert);
                    let config = config.clone();
                    let protocol = Protocol::negotiated(&info);
                    async move {
                        let _ = serve(PipeIo::new(pipe), service, &config, protocol).await;
                    }
                };
                crate::listen::accept_until_shutdown(
                    addr,
                    drain_timeout,
                    transport.clone(),
                    cap,
                    middleware.clone(),
                    serve,
                )
            },
        )
    }
}

/// The protocols [`HyperServer::tls`] takes by ALPN, preferred first: `curl --http1.0`
/// offers only `http/1.0` (hyper serves it as HTTP/1.x), and a client whose offer matches
/// none of them is refused with `no_application_protocol` (RFC 7301).
pub const ALPN: &[&[u8]] = &[b"h2", b"http/1.1", b"http/1.0"];

/// Which HTTP version a connection speaks, if the middleware (ALPN) settled it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Protocol {
    Http1,
    Http2,
    /// Cleartext, or TLS without ALPN: the client's first bytes decide.
    Sniff,
}

impl Protocol {
    fn negotiated(info: &ConnInfo) -> Protocol {
        match info.alpn() {
            Some(b"h2") => Protocol::Http2,
            Some(b"http/1.1" | b"http/1.0") => Protocol::Http1,
            _ => Protocol::Sniff,
        }
    }
}

/// Serves one connection with hyper: HTTP/2 if the client opens with the HTTP/2 preface
/// (prior knowledge), HTTP/1.1 otherwise. The first bytes must arrive within the header
/// timeout; HTTP/2 connections send keep-alive pings and get a GOAWAY after `idle_timeout`
/// without an open stream. A shutdown on this reactor turns into hyper's graceful shutdown
/// of the connection (before the first request: the connection just ends).
pub fn serve_connection<S, R, B>(
    io: PipeIo,
    service: S,
    config: &Config,
) -> impl Future<Output = Result<(), BoxError>> + '_
where
    S: Service<Request<R>, Response = Response<B>> + 'static,
    R: FromIncoming,
    S::Future: 'static,
    S::Error: Into<BoxError>,
    B: Body + 'static,
    B::Error: Into<BoxError>,
{
    serve(io, service, config, Protocol::Sniff)
}

/// Not an `async fn`: an async fn would keep the I/O and the service twice in its state, for
/// the connection's life.
#[allow(clippy::manual_async_fn)] // on purpose, see above
fn serve<'a, S, R, B>(
    mut io: PipeIo,
    service: S,
    config: &'a Config,
    protocol: Protocol,
) -> impl Future<Output = Result<(), BoxError>> + 'a
where
    S: Service<Request<R>, Response = Response<B>> + 'static,
    R: FromIncoming,
    S::Future: 'static,
    S::Error: Into<BoxError>,
    B: Body + 'static,
    B::Error: Into<BoxError>,
{
    async move {
        // One deadline for the connection's life: the preface wait, then HTTP/2's idle rule.
        let deadline = Deadline::new();
        let h2 = match protocol {
            Protocol::Http1 => false,
            // HTTP/2 by ALPN still waits for the client's preface within the header timeout:
            // until it arrives hyper's handshake is not done, so neither its pings nor the
            // idle rule would ever end a client that sends nothing.
            Protocol::Http2 | Protocol::Sniff => {
                deadline.set(Some(time::deadline_in(config.header_timeout)));
                let sniffed =
                    shutdown::unless_shutdown(deadline.timeout(io.starts_with_h2_preface())).await;
                deadline.set(None);
                match sniffed {
                    None => return Ok(()),
                    Some(Err(Expired)) => return Err("no request within the header timeout".into()),
                    // Not the preface after ALPN chose h2: hyper's HTTP/2 rejects it.
                    Some(Ok(h2)) => h2? || protocol == Protocol::Http2,
                }
            }
        };
        if h2 {
            let open = OpenStreams::default();
            let mut builder = http2::Builder::new(LocalExec);
            // Extended CONNECT (RFC 8441): WebSockets over HTTP/2, as axum::serve allows.
            builder
                .timer(ReactorTimer)
                .enable_connect_protocol()
                // The header section's limit, as for HTTP/1 (hyper answers 431 over it).
                .max_header_list_size(u32::try_from(config.max_head).unwrap_or(u32::MAX));
            if let Some(keep_alive) = config.http2_keep_alive {
                builder
                    .keep_alive_interval(time::capped(keep_alive.interval))
                    .keep_alive_timeout(time::capped(keep_alive.timeout));
            }
            let rate = config.min_request_body_data_rate;
            let conn = builder.serve_connection(io, Counted::new(service, open.clone(), rate));
            let idle = Idle {
                open,
                timeout: config.idle_timeout,
                closing: config.drain_timeout,
                deadline,
            };
            drive(conn, Some(idle), |conn| conn.graceful_shutdown()).await
        } else {
            let state = io.watch_upgrade();
            let answered_101 = Rc::new(Cell::new(false));
            let mut builder = http1::Builder::new();
            builder
                .timer(ReactorTimer)
                // hyper adds its timeouts to an `Instant` itself: capped, so `Duration::MAX`
                // means never here too.
                .header_read_timeout(time::capped(config.header_timeout))
                // A client that shuts its sending side down after a complete request still
                // gets the whole response (hyper's default treats that FIN as an error when
                // it meets it while the response is in progress).
                .half_close(true)
                // The head's limit (request line included, as the native server counts it):
                // hyper answers 431 over it. (Its default is its 400 KB read buffer.)
                .max_header_size(config.max_head);
            // Set only when not hyper's own default (100, this server's too): set, hyper
            // allocates the parser's field array per request.
            if config.max_headers != HYPER_MAX_HEADERS {
                builder.max_headers(config.max_headers);
            }
            let conn = builder
                .serve_connection(
                    io,
                    CountRequests::new(
                        service,
                        config.min_request_body_data_rate,
                        RequestLimits::new(config),
                        answered_101.clone(),
                    ),
                )
                // `hyper::upgrade::on` hands the service the connection after a 101 (WebSocket,
                // CONNECT), still on this reactor, still over the pipes.
                .with_upgrades();
            let served = drive(conn, None, |conn| conn.graceful_shutdown()).await;
            if answered_101.get() {
                state.upgraded();
            }
            served
        }
    }
}

/// HTTP/2's idle rule: no open stream for `timeout` → graceful shutdown (GOAWAY), and a
/// connection still open `closing` after that is dropped.
struct Idle {
    open: OpenStreams,
    timeout: Duration,
    /// How long the graceful close may take: h2 sends its last GOAWAY, and closes, only
    /// once the peer acknowledges a PING, which a peer may never do.
    closing: Duration,
    deadline: Deadline,
}

/// Polls `conn`; once shutdown is triggered, or the connection has been idle too long,
/// asks it to finish gracefully and keeps polling.
fn drive<C, G>(conn: C, idle: Option<Idle>, graceful: G) -> Drive<C, G>
where
    G: FnOnce(Pin<&mut C>),
{
    Drive {
        conn,
        idle,
        stop: shutdown::triggered(),
        graceful: Some(graceful),
        was_idle: false,
        closing: false,
    }
}

/// The future of [`drive`]: a struct, not an `async fn`, whose state would hold hyper's
/// connection (1.6 KB for HTTP/2) twice for the connection's life.
struct Drive<C, G> {
    conn: C,
    idle: Option<Idle>,
    stop: shutdown::Triggered,
    graceful: Option<G>,
    was_idle: bool,
    /// The idle rule started the graceful close; the deadline now bounds it.
    closing: bool,
}

impl<C, E, G> Future for Drive<C, G>
where
    C: Future<Output = Result<(), E>>,
    E: Into<BoxError>,
    G: FnOnce(Pin<&mut C>),
{
    type Output = Result<(), BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // SAFETY: structural pinning of `conn` alone: it is never moved out of the pinned
        // `Drive`, which has no `Drop` or `Unpin` impl of its own; the other fields are not
        // pinned.
        let this = unsafe { self.get_unchecked_mut() };
        // SAFETY: as above, `conn` stays where the pinned `Drive` holds it.
        let mut conn = unsafe { Pin::new_unchecked(&mut this.conn) };
        let mut finish = Pin::new(&mut this.stop).poll(cx).is_ready();
        if let Some(idle) = this.idle.as_ref().filter(|_| this.closing) {
            if idle.deadline.poll_expired(cx).is_ready() {
                // The peer did not let the connection close in time: dropped.
                return Poll::Ready(Ok(()));
            }
        } else if let Some(idle) = &this.idle {
            let now_idle = idle.open.get() == 0;
            if now_idle && !this.was_idle {
                idle.deadline.set(Some(time::deadline_in(idle.timeout)));
            } else if !now_idle && this.was_idle {
                idle.deadline.set(None);
            }
            this.was_idle = now_idle;
            if now_idle && idle.deadline.poll_expired(cx).is_ready() && this.graceful.is_some() {
                finish = true;
                this.closing = true;
                idle.deadline.set(Some(time::deadline_in(idle.closing)));
                // Registered now: the close's own polls need not come back here.
                let _ = idle.deadline.poll_expired(cx);
            }
        }
        if let Some(start) = this.graceful.take_if(|_| finish) {
            start(conn.as_mut());
        }
        match conn.as_mut().poll(cx) {
            Poll::Ready(result) => Poll::Ready(result.map_err(Into::into)),
            Poll::Pending => Poll::Pending,
        }
    }
}
