//! A hyper server on its own runtime (one reactor) and thread, for the tests of hyper over
//! ringhop; stopped (gracefully) when dropped.
#![allow(dead_code)]

#[path = "../common/net.rs"]
mod net;

use std::error::Error as StdError;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Body;
use hyper::service::Service;
use hyper::{Request, Response};
use ringhop::http::hyper::{FromIncoming, HyperServer};
use ringhop::http::tls::TlsAcceptor;
use ringhop::http::Config;
use ringhop::rt::Runtime;

type BoxError = Box<dyn StdError + Send + Sync>;

pub struct HyperTestServer {
    pub addr: SocketAddr,
    pub runtime: Arc<Runtime>,
    thread: Option<std::thread::JoinHandle<std::io::Result<()>>>,
}

impl HyperTestServer {
    /// Serves `make_service()` per connection on a free port of 127.0.0.1 with `config`.
    pub fn start<F, S, R, B>(config: Config, reactors: usize, make_service: F) -> HyperTestServer
    where
        F: Fn() -> S + Send + Clone + 'static,
        S: Service<Request<R>, Response = Response<B>> + 'static,
        R: FromIncoming,
        S::Future: 'static,
        S::Error: Into<BoxError>,
        B: Body + 'static,
        B::Error: Into<BoxError>,
    {
        Self::start_with(config, reactors, None, make_service)
    }

    /// [`start`](Self::start) over TLS (`HyperServer::tls`, so ALPN offers h2 and http/1.1).
    pub fn start_tls<F, S, R, B>(
        config: Config,
        reactors: usize,
        tls: TlsAcceptor,
        make_service: F,
    ) -> HyperTestServer
    where
        F: Fn() -> S + Send + Clone + 'static,
        S: Service<Request<R>, Response = Response<B>> + 'static,
        R: FromIncoming,
        S::Future: 'static,
        S::Error: Into<BoxError>,
        B: Body + 'static,
        B::Error: Into<BoxError>,
    {
        Self::start_with(config, reactors, Some(tls), make_service)
    }

    fn start_with<F, S, R, B>(
        config: Config,
        reactors: usize,
        tls: Option<TlsAcceptor>,
        make_service: F,
    ) -> HyperTestServer
    where
        F: Fn() -> S + Send + Clone + 'static,
        S: Service<Request<R>, Response = Response<B>> + 'static,
        R: FromIncoming,
        S::Future: 'static,
        S::Error: Into<BoxError>,
        B: Body + 'static,
        B::Error: Into<BoxError>,
    {
        let runtime = Arc::new(
            Runtime::builder()
                .reactors(reactors)
                .pin_cores(false)
                .build()
                .unwrap(),
        );
        let addr = net::free_local_addr();
        let rt = runtime.clone();
        let thread = std::thread::spawn(move || {
            let server = HyperServer::bind(addr).config(config).handle_signals(false);
            match tls {
                Some(tls) => server.tls(tls).run(&rt, make_service),
                None => server.run(&rt, make_service),
            }
        });
        while std::net::TcpStream::connect(addr).is_err() {
            std::thread::sleep(Duration::from_millis(5));
        }
        HyperTestServer {
            addr,
            runtime,
            thread: Some(thread),
        }
    }

    /// Waits (up to 5 s) until the server has no connection open; panics otherwise.
    pub fn wait_until_no_connection(&self) {
        let started = std::time::Instant::now();
        loop {
            let stats = ringhop::http::stats(&self.runtime);
            if stats.total.open_connections == 0 {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "connections still open: {stats:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Shuts down gracefully; returns what `run` returned.
    pub fn stop(mut self) -> std::io::Result<()> {
        ringhop::http::trigger_shutdown(&self.runtime);
        self.thread.take().unwrap().join().unwrap()
    }
}

impl Drop for HyperTestServer {
    fn drop(&mut self) {
        if let Some(thread) = self.thread.take() {
            ringhop::http::trigger_shutdown(&self.runtime);
            let _ = thread.join();
        }
    }
}

/// An HTTP/2 client connection (prior knowledge) to `addr` over tokio, its connection task
/// spawned on the current tokio runtime.
pub async fn http2_client<B>(
    addr: SocketAddr,
) -> (
    hyper::client::conn::http2::SendRequest<B>,
    tokio::task::JoinHandle<hyper::Result<()>>,
)
where
    B: Body + Unpin + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (sender, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .unwrap();
    (sender, tokio::spawn(conn))
}

/// A tokio current_thread runtime with IO and timers: the clients' side of a test.
pub fn tokio_rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}
