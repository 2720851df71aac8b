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

mod exec;
mod io;
mod timer;

use std::error::Error as StdError;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::pin;
use std::task::Poll;
use std::time::Duration;

use hyper::body::{Body, Incoming};
use hyper::server::conn::{http1, http2};
use hyper::service::Service;
use hyper::{Request, Response};
use ringhop_pipes::{Linger, MinDataRate, TransportOptions};
use ringhop_runtime::Runtime;

pub use exec::LocalExec;
pub use io::PipeIo;
pub use timer::ReactorTimer;

use crate::shutdown;

type BoxError = Box<dyn StdError + Send + Sync>;

/// Serves a hyper service on every reactor of a runtime.
pub struct HyperServer {
    addr: SocketAddr,
    header_read_timeout: Duration,
    drain_timeout: Duration,
    linger: Linger,
    min_response_data_rate: Option<MinDataRate>,
    handle_signals: bool,
}

impl HyperServer {
    /// A server for `addr`: header read timeout 30 s, drain timeout 10 s, SIGINT/SIGTERM
    /// handled.
    pub fn bind(addr: SocketAddr) -> HyperServer {
        HyperServer {
            addr,
            header_read_timeout: Duration::from_secs(30),
            drain_timeout: Duration::from_secs(10),
            linger: Linger::default(),
            min_response_data_rate: Some(MinDataRate::default()),
            handle_signals: true,
        }
    }

    /// HTTP/1.1 header read timeout (hyper's, on ringhop timers).
    pub fn header_read_timeout(mut self, timeout: Duration) -> HyperServer {
        self.header_read_timeout = timeout;
        self
    }

    /// How long in-flight connections may take after a shutdown signal.
    pub fn drain_timeout(mut self, timeout: Duration) -> HyperServer {
        self.drain_timeout = timeout;
        self
    }

    /// How long a finished connection's socket waits for the client's FIN (see
    /// [`Config::linger`](crate::Config::linger)); default 2 s or 64 KiB.
    pub fn linger(mut self, linger: Linger) -> HyperServer {
        self.linger = linger;
        self
    }

    /// The slowest a client may take hyper's output (see
    /// [`Config::min_response_data_rate`](crate::Config::min_response_data_rate)); default
    /// 240 B/s after 5 s, `None` disables it.
    pub fn min_response_data_rate(mut self, rate: Option<MinDataRate>) -> HyperServer {
        self.min_response_data_rate = rate;
        self
    }

    /// Whether `run` handles SIGINT/SIGTERM (default `true`); see
    /// [`trigger_shutdown`](crate::trigger_shutdown) otherwise.
    pub fn handle_signals(mut self, handle: bool) -> HyperServer {
        self.handle_signals = handle;
        self
    }

    /// Binds on every reactor, then serves: each accepted connection gets
    /// `make_service()` (called on its reactor, so the service may be `!Send`). Returns after
    /// a graceful shutdown.
    pub fn run<F, S, B>(self, runtime: &Runtime, make_service: F) -> std::io::Result<()>
    where
        F: Fn() -> S + Send + Clone + 'static,
        S: Service<Request<Incoming>, Response = Response<B>> + 'static,
        S::Future: 'static,
        S::Error: Into<BoxError>,
        B: Body + 'static,
        B::Error: Into<BoxError>,
    {
        let addr = self.addr;
        let (header_read_timeout, drain_timeout) = (self.header_read_timeout, self.drain_timeout);
        let transport = TransportOptions {
            linger: self.linger,
            min_send_rate: self.min_response_data_rate,
            ..TransportOptions::default()
        };
        crate::listen::run_on_every_reactor(runtime, addr, self.handle_signals, None, move || {
            let make_service = make_service.clone();
            crate::listen::accept_until_shutdown(
                addr,
                drain_timeout,
                transport.clone(),
                move |pipe| {
                    let service = make_service();
                    async move {
                        let _ =
                            serve_connection(PipeIo::new(pipe), service, header_read_timeout).await;
                    }
                },
            )
        })
    }
}

/// Serves one connection with hyper: HTTP/2 if the client opens with the HTTP/2 preface
/// (prior knowledge), HTTP/1.1 otherwise. A shutdown on this reactor turns into hyper's
/// graceful shutdown of the connection.
pub async fn serve_connection<S, B>(
    mut io: PipeIo,
    service: S,
    header_read_timeout: Duration,
) -> Result<(), BoxError>
where
    S: Service<Request<Incoming>, Response = Response<B>> + 'static,
    S::Future: 'static,
    S::Error: Into<BoxError>,
    B: Body + 'static,
    B::Error: Into<BoxError>,
{
    if io.starts_with_h2_preface().await? {
        let conn = http2::Builder::new(LocalExec)
            .timer(ReactorTimer)
            .serve_connection(io, service);
        drive(conn, |conn| conn.graceful_shutdown()).await
    } else {
        let conn = http1::Builder::new()
            .timer(ReactorTimer)
            .header_read_timeout(header_read_timeout)
            .serve_connection(io, service);
        drive(conn, |conn| conn.graceful_shutdown()).await
    }
}

/// Polls `conn`; once shutdown is triggered, asks it to finish gracefully and keeps polling.
async fn drive<C, E>(conn: C, graceful: impl FnOnce(std::pin::Pin<&mut C>)) -> Result<(), BoxError>
where
    C: Future<Output = Result<(), E>>,
    E: Into<BoxError>,
{
    let mut conn = pin!(conn);
    let mut stop = pin!(shutdown::triggered());
    let mut graceful = Some(graceful);
    std::future::poll_fn(|cx| {
        if let Some(start) = graceful.take_if(|_| stop.as_mut().poll(cx).is_ready()) {
            start(conn.as_mut());
        }
        match conn.as_mut().poll(cx) {
            Poll::Ready(result) => Poll::Ready(result.map_err(Into::into)),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}
