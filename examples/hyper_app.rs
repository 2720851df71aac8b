//! One hyper service, two transports: `TRANSPORT=ringhop` (default) serves it over ringhop's
//! reactors and pipes, `TRANSPORT=tokio` over tokio's stock TcpListener, everything else
//! equal. HTTP/1.1 and HTTP/2 (prior knowledge) on both.
//!
//! ```text
//! cargo run --release --example hyper_app                    # ADDR=127.0.0.1:8080
//! curl http://127.0.0.1:8080/json
//! curl --http2-prior-knowledge http://127.0.0.1:8080/plaintext
//! TRANSPORT=tokio REACTORS=1 cargo run --release --example hyper_app
//! ```
//!
//! Routes: `GET /` and `/plaintext` → "Hello, World!", `GET /json`, `POST /echo` (streams the
//! request body back, its first chunk read before answering so that hyper sends
//! `100 Continue` to curl's large uploads), `GET /ws` (a WebSocket echoing text and binary
//! messages); a wrong method gets 405 with `Allow`. `TLS_CERT` and `TLS_KEY` (PEM files)
//! serve them over HTTPS: HTTP/2 or HTTP/1.1 by ALPN. `REACTORS` sets reactors (ringhop) or
//! worker threads (tokio), `MAX_CONNECTIONS` the connection cap (ringhop; default: from the
//! fd limit). On SIGINT/SIGTERM the ringhop mode drains, prints its on-reactor counters and
//! exits 0.

mod common;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Either, Full};
use hyper::body::{Frame, Incoming, SizeHint};
use hyper::header::{
    HeaderValue, ALLOW, CONNECTION, CONTENT_TYPE, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY,
    SEC_WEBSOCKET_VERSION, UPGRADE,
};
use hyper::{Method, Request, Response, StatusCode};
use ringhop::http::hyper::RequestBody;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::WebSocketStream;

/// A response: a fixed body, or the request's own body streamed back (`/echo`).
pub(crate) type Body<B = RequestBody> = Either<Full<Bytes>, Echo<B>>;

/// The request's body streamed back, its first frame read before the response is returned:
/// reading the body is what makes hyper answer `Expect: 100-continue` (curl sends it with
/// uploads over 1 MiB); answering first would leave curl waiting a second before it sends.
pub(crate) struct Echo<B: hyper::body::Body> {
    first: Option<Result<Frame<B::Data>, B::Error>>,
    rest: B,
}

// Nothing in it is pinned: the first frame is moved out, the rest polled through `Pin::new`.
impl<B: hyper::body::Body + Unpin> Unpin for Echo<B> {}

impl<B: hyper::body::Body + Unpin> Echo<B> {
    async fn new(mut body: B) -> Self {
        let first = body.frame().await;
        Echo { first, rest: body }
    }
}

impl<B: hyper::body::Body + Unpin> hyper::body::Body for Echo<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let this = self.get_mut();
        match this.first.take() {
            Some(first) => Poll::Ready(Some(first)),
            None => Pin::new(&mut this.rest).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.first.is_none() && self.rest.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        let first = match &self.first {
            Some(Ok(frame)) => frame.data_ref().map_or(0, |data| data.remaining() as u64),
            _ => 0,
        };
        let rest = self.rest.size_hint();
        let mut hint = SizeHint::new();
        hint.set_lower(rest.lower() + first);
        if let Some(upper) = rest.upper() {
            hint.set_upper(upper + first);
        }
        hint
    }
}

fn full<B: hyper::body::Body + Unpin>(
    status: StatusCode,
    content_type: &'static str,
    body: &'static [u8],
) -> Response<Body<B>> {
    let mut response = Response::new(Either::Left(Full::new(Bytes::from_static(body))));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// `GET /ws`: a WebSocket that echoes text and binary messages. After the `101`, hyper hands
/// the connection over; the echo runs on the connection's reactor on ringhop (spawned
/// there with `spawn_local`), as a tokio task on tokio.
fn websocket<B: hyper::body::Body + Unpin>(mut req: Request<B>) -> Response<Body<B>> {
    // RFC 6455 §4.1: the opening handshake is an HTTP/1.1 request (or later); HTTP/1.0
    // cannot switch protocols.
    if req.version() < hyper::Version::HTTP_11 {
        let mut response = full(
            StatusCode::UPGRADE_REQUIRED,
            "text/plain",
            b"a WebSocket handshake needs HTTP/1.1",
        );
        response
            .headers_mut()
            .insert(UPGRADE, HeaderValue::from_static("websocket"));
        return response;
    }
    let headers = req.headers();
    let asks = |name, value: &str| {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|token| token.trim().eq_ignore_ascii_case(value))
    };
    let key = headers
        .get(SEC_WEBSOCKET_KEY)
        .map(|key| derive_accept_key(key.as_bytes()));
    let (Some(accept), true, true, true) = (
        key,
        asks(UPGRADE, "websocket"),
        asks(CONNECTION, "upgrade"),
        asks(SEC_WEBSOCKET_VERSION, "13"),
    ) else {
        return full(
            StatusCode::BAD_REQUEST,
            "text/plain",
            b"a WebSocket handshake (version 13) is expected here",
        );
    };
    let upgraded = hyper::upgrade::on(&mut req);
    let echo = async move {
        let Ok(upgraded) = upgraded.await else {
            return;
        };
        let io = hyper_util::rt::TokioIo::new(upgraded);
        let mut ws = WebSocketStream::from_raw_socket(io, Role::Server, None).await;
        while let Some(Ok(message)) = ws.next().await {
            if (message.is_text() || message.is_binary()) && ws.send(message).await.is_err() {
                break;
            }
        }
    };
    if ringhop::rt::try_current().is_some() {
        drop(ringhop::rt::spawn_local(echo));
    } else {
        drop(tokio::spawn(echo));
    }
    let mut response = full(StatusCode::SWITCHING_PROTOCOLS, "text/plain", b"");
    let headers = response.headers_mut();
    headers.remove(CONTENT_TYPE);
    headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Ok(accept) = HeaderValue::from_str(&accept) {
        headers.insert(SEC_WEBSOCKET_ACCEPT, accept);
    }
    response
}

/// The service both transports serve. On ringhop the request body is a [`RequestBody`] (the
/// minimum request body rate applies); on tokio it is hyper's `Incoming`.
pub(crate) async fn app<B: hyper::body::Body + Unpin>(
    req: Request<B>,
) -> Result<Response<Body<B>>, Infallible> {
    Ok(match (req.method(), req.uri().path()) {
        (&Method::GET | &Method::HEAD, "/" | "/plaintext") => {
            full(StatusCode::OK, "text/plain", b"Hello, World!")
        }
        (&Method::GET | &Method::HEAD, "/json") => full(
            StatusCode::OK,
            "application/json",
            br#"{"message":"Hello, World!"}"#,
        ),
        (&Method::POST, "/echo") => {
            let content_type = req.headers().get(CONTENT_TYPE).cloned();
            let mut response = Response::new(Either::Right(Echo::new(req.into_body()).await));
            if let Some(content_type) = content_type {
                response.headers_mut().insert(CONTENT_TYPE, content_type);
            }
            response
        }
        (&Method::GET, "/ws") => websocket(req),
        (_, path @ ("/" | "/plaintext" | "/json" | "/echo" | "/ws")) => {
            // RFC 9110 §15.5.6: a 405 says which methods the resource supports.
            let allow = match path {
                "/echo" => "POST",
                "/ws" => "GET",
                _ => "GET, HEAD",
            };
            let mut response = full(
                StatusCode::METHOD_NOT_ALLOWED,
                "text/plain",
                b"Method Not Allowed",
            );
            response
                .headers_mut()
                .insert(ALLOW, HeaderValue::from_static(allow));
            response
        }
        _ => full(StatusCode::NOT_FOUND, "text/plain", b"Not Found"),
    })
}

fn main() -> std::process::ExitCode {
    common::exit_on_error("hyper_app", run)
}

fn run() -> std::io::Result<()> {
    let addr = common::addr_from_env()?;
    let threads: Option<usize> = std::env::var("REACTORS").ok().and_then(|n| n.parse().ok());
    match std::env::var("TRANSPORT").as_deref().unwrap_or("ringhop") {
        "ringhop" => ringhop_transport(addr, threads),
        "tokio" => tokio_transport(addr, threads),
        other => Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("TRANSPORT={other}: use ringhop or tokio"),
        )),
    }
}

fn ringhop_transport(addr: SocketAddr, reactors: Option<usize>) -> std::io::Result<()> {
    let mut builder = ringhop::rt::Runtime::builder();
    if let Some(reactors) = reactors {
        builder.reactors(reactors);
    }
    let runtime = builder.build()?;
    let tls = common::tls_from_env()?;
    let banner = format!(
        "hyper on ringhop listening on {}://{addr} with {} reactors ({})",
        if tls.is_some() { "https" } else { "http" },
        runtime.handles().len(),
        runtime.driver()
    );
    let server = ringhop::http::hyper::HyperServer::bind(addr)
        .config(common::config_from_env())
        .on_listening(move |_| println!("{banner}"));
    let service = || hyper::service::service_fn(app::<RequestBody>);
    match tls {
        Some(tls) => server.tls(tls).run(&runtime, service)?,
        None => server.run(&runtime, service)?,
    }
    let off: u64 = runtime
        .handles()
        .iter()
        .map(|h| h.stats().off_reactor_polls)
        .sum();
    let polls: u64 = runtime.handles().iter().map(|h| h.stats().polls).sum();
    println!(
        "polls: {polls}, off-reactor polls: {off}, pipe wakes posted across threads: {}",
        ringhop::pipes::cross_thread_wakes()
    );
    common::print_stats(&runtime);
    Ok(())
}

fn tokio_transport(addr: SocketAddr, threads: Option<usize>) -> std::io::Result<()> {
    let runtime = match threads {
        Some(1) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?,
        _ => {
            let mut builder = tokio::runtime::Builder::new_multi_thread();
            if let Some(threads) = threads {
                builder.worker_threads(threads);
            }
            builder.enable_all().build()?
        }
    };
    // HTTPS: tokio-rustls with the same rustls configuration (and ALPN) as the ringhop mode.
    let tls = common::tls_from_env()?.map(|tls| {
        let config = tls
            .alpn_protocols(ringhop::http::hyper::ALPN)
            .config()
            .clone();
        tokio_rustls::TlsAcceptor::from(config)
    });
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        println!("hyper on tokio listening on {scheme}://{addr}");
        loop {
            let (stream, _) = listener.accept().await?;
            let _ = stream.set_nodelay(true);
            let tls = tls.clone();
            tokio::spawn(async move {
                match tls {
                    Some(tls) => {
                        if let Ok(stream) = tls.accept(stream).await {
                            serve_tokio(stream).await;
                        }
                    }
                    None => serve_tokio(stream).await,
                }
            });
        }
    })
}

/// One connection of the tokio mode: the same hyper settings as the ringhop transport's
/// defaults (a timer, the 30 s header timeout, half-closed clients answered, HTTP/2 keep-alive pings every 30 s with a
/// 20 s timeout), so a comparison measures the transports, not the settings; with upgrades,
/// for `/ws`.
async fn serve_tokio<I>(stream: I)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let config = ringhop::http::Config::default();
    let mut builder =
        hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
    builder
        .http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(config.header_timeout)
        .half_close(true);
    let mut http2 = builder.http2();
    http2.timer(hyper_util::rt::TokioTimer::new());
    if let Some(keep_alive) = config.http2_keep_alive {
        http2
            .keep_alive_interval(keep_alive.interval)
            .keep_alive_timeout(keep_alive.timeout);
    }
    let _ = builder
        .serve_connection_with_upgrades(
            hyper_util::rt::TokioIo::new(stream),
            hyper::service::service_fn(app::<Incoming>),
        )
        .await;
}
