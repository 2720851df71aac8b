//! `Server`: binds on every reactor (SO_REUSEPORT), serves connections locally, shuts down
//! gracefully on SIGINT/SIGTERM.

use std::io;
use std::net::SocketAddr;

#[cfg(feature = "tls")]
use ringhop_pipes::tls::TlsAcceptor;
use ringhop_pipes::{Chain, Middleware, TransportOptions};
use ringhop_runtime::Runtime;

use crate::config::Config;
use crate::conn;
use crate::handler::Handler;
use crate::shutdown;

/// An HTTP/1.1 server: every reactor of the runtime binds its own listener on the same
/// address and serves the connections it accepts, start to end, on its own thread.
///
/// ```no_run
/// use ringhop_http::{Request, Response, Server};
/// let runtime = ringhop_runtime::Runtime::builder().build()?;
/// Server::bind("127.0.0.1:8080".parse().unwrap())
///     .run(&runtime, async |_req: &mut Request<'_>, res: &mut Response<'_>| {
///         res.header("Content-Type", "text/plain").body(b"Hello, World!");
///         Ok(())
///     })?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Server<M = ()> {
    addr: SocketAddr,
    config: Config,
    handle_signals: bool,
    on_listening: Option<Box<dyn FnOnce(SocketAddr) + Send>>,
    middleware: M,
}

impl<M> std::fmt::Debug for Server<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("addr", &self.addr)
            .field("config", &self.config)
            .field("handle_signals", &self.handle_signals)
            .finish()
    }
}

impl Server {
    /// A server for `addr` with the default [`Config`].
    pub fn bind(addr: SocketAddr) -> Server {
        Server {
            addr,
            config: Config::default(),
            handle_signals: true,
            on_listening: None,
            middleware: (),
        }
    }
}

/// The HTTP/1 protocols this server takes by ALPN, preferred first.
#[cfg(feature = "tls")]
pub(crate) const HTTP1_ALPN: &[&[u8]] = &[b"http/1.1", b"http/1.0"];

impl<M: Middleware + Clone + Send> Server<M> {
    /// Adds `next` to the connection's middleware chain, after the ones added before (the
    /// first added is nearest the socket). It runs on the connection's reactor before the
    /// first request is read; an error from it closes the connection.
    pub fn middleware<N: Middleware + Clone + Send>(self, next: N) -> Server<Chain<M, N>> {
        self.map_middleware(|chain| chain.then(next))
    }

    /// Serves HTTPS: puts `tls` first in the chain (nearest the socket), advertising
    /// `http/1.1` and `http/1.0` by ALPN (this server speaks no HTTP/2; `curl --http1.0`
    /// offers only `http/1.0`, and would otherwise be refused with `no_application_protocol`).
    #[cfg(feature = "tls")]
    pub fn tls(self, tls: ringhop_pipes::tls::TlsAcceptor) -> Server<Chain<TlsAcceptor, M>> {
        self.map_middleware(|chain| tls.alpn_protocols(HTTP1_ALPN).then(chain))
    }

    /// The same server with its chain replaced by `f(chain)`.
    fn map_middleware<N>(self, f: impl FnOnce(M) -> N) -> Server<N> {
        let Server {
            addr,
            config,
            handle_signals,
            on_listening,
            middleware,
        } = self;
        Server {
            addr,
            config,
            handle_signals,
            on_listening,
            middleware: f(middleware),
        }
    }

    /// Calls `callback` with the address once every reactor listens (before serving).
    pub fn on_listening(mut self, callback: impl FnOnce(SocketAddr) + Send + 'static) -> Self {
        self.on_listening = Some(Box::new(callback));
        self
    }

    /// Replaces the limits and timeouts.
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Whether `run` installs the SIGINT/SIGTERM handler (default `true`).
    pub fn handle_signals(mut self, handle: bool) -> Self {
        self.handle_signals = handle;
        self
    }

    /// Serves with `handler` (cloned onto every reactor) until SIGINT or SIGTERM, then stops
    /// accepting, lets in-flight requests finish (up to the drain timeout), closes idle
    /// connections and returns. Fails if a reactor cannot bind.
    pub fn run<H>(self, runtime: &Runtime, handler: H) -> io::Result<()>
    where
        H: Handler + Clone + Send + 'static,
    {
        let Server {
            addr,
            config,
            handle_signals,
            on_listening,
            middleware,
        } = self;
        let cap = config.connections_per_reactor(runtime.handles().len());
        crate::listen::run_on_every_reactor(
            runtime,
            addr,
            handle_signals,
            on_listening,
            move || {
                let handler = handler.clone();
                let config = config.clone();
                let middleware = middleware.clone();
                async move { serve_reactor(addr, handler, config, cap, middleware).await }
            },
        )
    }
}

/// Triggers shutdown on every reactor of `runtime` (what the signal handler does).
pub fn trigger_shutdown(runtime: &Runtime) {
    for handle in runtime.handles() {
        let _ = handle.post(shutdown::trigger);
    }
}

async fn serve_reactor<H: Handler + 'static, M: Middleware>(
    addr: SocketAddr,
    handler: H,
    config: Config,
    cap: usize,
    middleware: M,
) -> io::Result<()> {
    let drain_timeout = config.drain_timeout;
    let transport = TransportOptions {
        linger: config.linger,
        min_send_rate: config.min_response_data_rate,
        ..TransportOptions::default()
    };
    let shared = std::rc::Rc::new((handler, config));
    let serve = move |pipe, info| {
        let shared = shared.clone();
        async move { conn::serve(pipe, &info, &shared.0, &shared.1).await }
    };
    crate::listen::accept_until_shutdown(addr, drain_timeout, transport, cap, middleware, serve)
        .await
}
