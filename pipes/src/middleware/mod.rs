//! Connection middleware: what runs on a connection between the socket and the protocol —
//! Kestrel's connection-middleware chain on [`DuplexPipe`]s.
//!
//! A [`Middleware`] takes the pipe it was handed (the socket's, or the previous middleware's)
//! and returns the pipe the next one sees, learning about the connection on the way (TLS
//! fills [`ConnInfo::tls`]). A middleware that transforms bytes (TLS) or watches them (the
//! [`ConnectionLog`](crate::ConnectionLog)) creates a new [`DuplexPipe::pair`] and runs one
//! local task between the two; one that only looks at [`ConnInfo`] returns the pipe as is.
//! Everything runs on the connection's reactor.
//!
//! Chains compose in order with [`Middleware::then`]: the first middleware is the one nearest
//! the socket.

pub(crate) mod join;
mod log;

use std::future::Future;
use std::io;
use std::net::SocketAddr;

use ringhop_runtime::net::TcpStream;

use crate::duplex::DuplexPipe;

pub use log::{CloseReason, ConnRecord, ConnectionLog};

/// What is known about a connection: its addresses and, once a TLS middleware ran, what the
/// handshake negotiated.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConnInfo {
    /// The client's address (`None` when the socket could not tell, e.g. already reset).
    pub peer_addr: Option<SocketAddr>,
    /// The address the connection was accepted on.
    pub local_addr: Option<SocketAddr>,
    /// Set by a TLS middleware after its handshake (boxed: most connections have none, and
    /// every connection keeps its `ConnInfo` for its life).
    pub tls: Option<Box<TlsInfo>>,
}

impl ConnInfo {
    /// The addresses of an accepted (or connected) socket.
    pub fn of(stream: &TcpStream) -> ConnInfo {
        ConnInfo {
            peer_addr: stream.peer_addr().ok(),
            local_addr: stream.local_addr().ok(),
            tls: None,
        }
    }

    /// The protocol the TLS handshake negotiated by ALPN (`b"h2"`, `b"http/1.1"`), if any.
    pub fn alpn(&self) -> Option<&[u8]> {
        self.tls.as_ref()?.alpn.as_deref()
    }
}

/// What a TLS handshake negotiated.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsInfo {
    /// The server name the client asked for (SNI), if it sent one.
    pub server_name: Option<String>,
    /// The application protocol agreed by ALPN, if the client offered one the server has.
    pub alpn: Option<Vec<u8>>,
    /// `"TLSv1.3"` or `"TLSv1.2"`.
    pub version: &'static str,
}

/// One step of a connection's chain: takes the connection as a [`DuplexPipe`] and returns
/// the pipe the next step (in the end, the protocol) reads and writes.
///
/// An error ends the connection (the pipes it was given are dropped, which closes the
/// socket); the protocol never sees it.
///
/// ```
/// use std::io;
/// use ringhop_pipes::{ConnInfo, DuplexPipe, Middleware};
///
/// /// Refuses connections from outside the loopback network.
/// #[derive(Clone)]
/// struct LoopbackOnly;
///
/// impl Middleware for LoopbackOnly {
///     async fn call(&self, pipe: DuplexPipe, info: &mut ConnInfo) -> io::Result<DuplexPipe> {
///         match info.peer_addr {
///             Some(addr) if addr.ip().is_loopback() => Ok(pipe),
///             _ => Err(io::Error::new(io::ErrorKind::PermissionDenied, "not loopback")),
///         }
///     }
/// }
/// ```
pub trait Middleware: 'static {
    /// Wraps the connection `pipe`; may update `info` for the steps after it.
    fn call(
        &self,
        pipe: DuplexPipe,
        info: &mut ConnInfo,
    ) -> impl Future<Output = io::Result<DuplexPipe>>;

    /// This middleware, then `next` on the pipe it returns.
    fn then<N: Middleware>(self, next: N) -> Chain<Self, N>
    where
        Self: Sized,
    {
        Chain {
            first: self,
            second: next,
        }
    }
}

/// The empty chain: the protocol gets the socket's pipe.
impl Middleware for () {
    async fn call(&self, pipe: DuplexPipe, _info: &mut ConnInfo) -> io::Result<DuplexPipe> {
        Ok(pipe)
    }
}

/// Two middlewares in order (see [`Middleware::then`]).
#[derive(Clone, Debug)]
pub struct Chain<A, B> {
    first: A,
    second: B,
}

impl<A: Middleware, B: Middleware> Middleware for Chain<A, B> {
    async fn call(&self, pipe: DuplexPipe, info: &mut ConnInfo) -> io::Result<DuplexPipe> {
        let pipe = self.first.call(pipe, info).await?;
        self.second.call(pipe, info).await
    }
}
