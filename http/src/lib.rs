//! ringhop's native HTTP/1.1 server: the whole request loop — receive, parse, handle, send —
//! runs on the connection's reactor thread, reading and writing through a `DuplexPipe`.
//!
//! - [`Server::bind`] + [`Server::run`] serve on every reactor of a runtime (SO_REUSEPORT),
//!   with graceful shutdown on SIGINT/SIGTERM.
//! - A [`Handler`] is an `async` function of `(&mut Request, &mut Response)`; [`Router`]
//!   dispatches on method and exact path.
//! - [`Request`] borrows the connection's buffer (method, path, query, headers) and streams
//!   its [`Body`]; [`Response`] writes status, headers and body straight into the output pipe.
//! - Strict HTTP/1.1 framing (RFC 9112): limits and malformed input are answered with the
//!   right status, then the connection is closed; see [`Config`].

#![deny(missing_docs)]
#![warn(clippy::undocumented_unsafe_blocks)]

mod body;
mod chars;
mod config;
mod conn;
mod date;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod handler;
#[cfg(feature = "hyper")]
pub mod hyper;
mod listen;
#[cfg(test)]
mod mutate;
mod parse;
mod rate_window;
mod request;
mod response;
mod server;
mod shutdown;
mod signals;
mod slot;
mod stats;
mod status;
mod throttle;
mod upgrade;

pub use body::Body;
pub use config::{Config, KeepAlive, Linger, MinDataRate};
pub use handler::{Allow, End, Handler, NotFound, Route, Router, Routes};
pub use request::Request;
pub use response::Response;
pub use server::{trigger_shutdown, Server};
pub use stats::{stats, ReactorCounters, Stats};
pub use status::Status;
pub use upgrade::{upgrade_stats, UpgradeStats};

/// TLS middleware (feature `tls`): [`tls::TlsAcceptor`] for `Server::tls` / `HyperServer::tls`.
#[cfg(feature = "tls")]
pub use ringhop_pipes::tls;
/// Connection middleware, shared with the pipes crate: both servers take a chain of them.
pub use ringhop_pipes::{
    Chain, CloseReason, ConnInfo, ConnRecord, ConnectionLog, Middleware, TlsInfo,
};
