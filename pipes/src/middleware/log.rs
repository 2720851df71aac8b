//! `ConnectionLog`: one line per connection — peer, bytes each way, duration, how it ended —
//! the smallest middleware that watches a connection's bytes.

use std::cell::Cell;
use std::fmt;
use std::future::{poll_fn, Future};
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use ringhop_runtime::{self as rt, time};

use super::join::join;
use super::{ConnInfo, Middleware};
use crate::duplex::DuplexPipe;
use crate::options::PipeOptions;
use crate::reader::PipeReader;
use crate::writer::PipeWriter;

/// A finished connection, as [`ConnectionLog`] reports it.
#[derive(Clone, Debug)]
pub struct ConnRecord {
    /// The client's address.
    pub peer_addr: Option<SocketAddr>,
    /// Bytes from the client (as seen at this point of the chain: ciphertext if the log
    /// comes before TLS, plaintext after it).
    pub bytes_in: u64,
    /// Bytes to the client.
    pub bytes_out: u64,
    /// From the middleware's start to the end of both directions.
    pub duration: Duration,
    /// How the connection ended.
    pub close: CloseReason,
}

/// Which side ended a connection first, and how.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CloseReason {
    /// The client closed its side (FIN) first.
    ClientClosed,
    /// The server finished its output (or stopped reading) first.
    ServerClosed,
    /// A side ended with an error (a reset, a cut response, a TLS failure): its message.
    Error(String),
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CloseReason::ClientClosed => f.write_str("client closed"),
            CloseReason::ServerClosed => f.write_str("server closed"),
            CloseReason::Error(message) => write!(f, "error: {message}"),
        }
    }
}

type Sink = Arc<dyn Fn(&ConnRecord) + Send + Sync>;

/// Logs every connection when it ends: by default one `tracing` line at INFO (target
/// `ringhop::connection`), or to a function of yours ([`ConnectionLog::to`]).
///
/// It copies the bytes between the pipe it is given and the one it returns (one local task
/// per connection), counting them; put it after TLS to count plaintext, before to count
/// what crossed the wire.
///
/// ```no_run
/// use ringhop_pipes::{ConnectionLog, Middleware};
/// # fn chain() -> impl Middleware {
/// ConnectionLog::to(|record| eprintln!("{:?} {} B in, {} B out, {}", record.peer_addr,
///     record.bytes_in, record.bytes_out, record.close))
/// # }
/// ```
#[derive(Clone, Default)]
pub struct ConnectionLog {
    sink: Option<Sink>,
}

impl fmt::Debug for ConnectionLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionLog")
            .field("custom_sink", &self.sink.is_some())
            .finish()
    }
}

impl ConnectionLog {
    /// Logs through `tracing`.
    pub fn new() -> ConnectionLog {
        ConnectionLog::default()
    }

    /// Hands every record to `sink` instead (on the connection's reactor thread).
    pub fn to(sink: impl Fn(&ConnRecord) + Send + Sync + 'static) -> ConnectionLog {
        ConnectionLog {
            sink: Some(Arc::new(sink)),
        }
    }
}

impl Middleware for ConnectionLog {
    async fn call(&self, outer: DuplexPipe, info: &mut ConnInfo) -> io::Result<DuplexPipe> {
        let (inner, application) = DuplexPipe::pair(
            PipeOptions::default().pause_writer_threshold(1024 * 1024),
            PipeOptions::default().pause_writer_threshold(64 * 1024),
        )?;
        let sink = self.sink.clone();
        let peer_addr = info.peer_addr;
        let started = time::now();
        drop(rt::spawn_local(async move {
            let DuplexPipe {
                input: mut from_client,
                output: mut to_client,
            } = outer;
            let DuplexPipe {
                input: mut from_server,
                output: mut to_server,
            } = inner;
            let (bytes_in, bytes_out) = (Cell::new(0), Cell::new(0));
            // Which side ended first, and how: the first end noted wins.
            let first_end: Cell<Option<CloseReason>> = Cell::new(None);
            let note = |reason: CloseReason| {
                let earlier = first_end.take();
                first_end.set(Some(earlier.unwrap_or(reason)));
            };
            join(
                async {
                    note(
                        match forward(&mut from_client, &mut to_server, &bytes_in).await {
                            End::SourceEnded => CloseReason::ClientClosed,
                            // The server stopped reading: its close.
                            End::SinkGone => CloseReason::ServerClosed,
                            End::Failed(err) => CloseReason::Error(err.to_string()),
                        },
                    );
                },
                async {
                    note(
                        match forward(&mut from_server, &mut to_client, &bytes_out).await {
                            End::SourceEnded => CloseReason::ServerClosed,
                            // The socket side is gone: the client left.
                            End::SinkGone => CloseReason::ClientClosed,
                            End::Failed(err) => CloseReason::Error(err.to_string()),
                        },
                    );
                },
            )
            .await;
            let record = ConnRecord {
                peer_addr,
                bytes_in: bytes_in.get(),
                bytes_out: bytes_out.get(),
                duration: time::now().saturating_duration_since(started),
                close: first_end.take().unwrap_or(CloseReason::ServerClosed),
            };
            match sink {
                Some(sink) => sink(&record),
                None => tracing::info!(
                    target: "ringhop::connection",
                    peer = ?record.peer_addr,
                    bytes_in = record.bytes_in,
                    bytes_out = record.bytes_out,
                    duration_ms = record.duration.as_millis() as u64,
                    close = %record.close,
                    "connection closed"
                ),
            }
        }));
        Ok(application)
    }
}

/// How one direction of [`forward`] ended.
enum End {
    /// The source completed (cleanly); passed on to the sink.
    SourceEnded,
    /// The sink's reader went away; the source was completed.
    SinkGone,
    /// The source ended with an error (passed on to the sink), or the sink failed.
    Failed(io::Error),
}

/// Copies `from` into `to` until `from` ends (its end, clean or not, is passed on) or `to`'s
/// reader goes away (then `from` is completed: nobody reads).
async fn forward(from: &mut PipeReader, to: &mut PipeWriter, count: &Cell<u64>) -> End {
    loop {
        // Also watch the far reader while waiting: an idle peer must not keep a connection
        // whose protocol already closed it.
        let read = poll_fn(|cx| {
            if to.poll_reader_completed(cx).is_ready() {
                return Poll::Ready(None);
            }
            let mut read = from.read();
            match Pin::new(&mut read).poll(cx) {
                Poll::Ready(Ok(result)) => {
                    let len = result.len();
                    for chunk in result.chunks() {
                        to.write(chunk);
                    }
                    Poll::Ready(Some(Ok((len, result.is_completed()))))
                }
                Poll::Ready(Err(err)) => Poll::Ready(Some(Err(err))),
                Poll::Pending => Poll::Pending,
            }
        })
        .await;
        let (len, completed) = match read {
            None => {
                from.complete(None);
                return End::SinkGone;
            }
            Some(Err(err)) => {
                to.complete(Some(io::Error::new(err.kind(), err.to_string())));
                return End::Failed(err);
            }
            Some(Ok(read)) => read,
        };
        if let Err(err) = from.advance_to(len, len) {
            return End::Failed(err);
        }
        count.set(count.get() + len as u64);
        match to.flush().await {
            Ok(result) if result.completed => {
                from.complete(None);
                return End::SinkGone;
            }
            Ok(_) => {}
            Err(err) => {
                from.complete(None);
                return End::Failed(err);
            }
        }
        if completed {
            to.complete(None);
            return End::SourceEnded;
        }
    }
}
