//! ringhop's pipes: byte pipes with System.IO.Pipelines semantics whose waiting reader and
//! writer are woken on their reactor, and the pumps that connect them to sockets.
//!
//! - [`Pipe::new`] gives a [`PipeReader`] and a [`PipeWriter`]. The writer fills pooled
//!   segments in place ([`PipeWriter::buffer_mut`], [`PipeWriter::advance`]) and publishes them
//!   with [`PipeWriter::flush`], which waits while the reader is too far behind
//!   (backpressure with hysteresis). The reader gets every unconsumed byte as a segmented
//!   [`ReadResult`] and reports progress with [`PipeReader::advance_to`]`(consumed, examined)`.
//! - [`DuplexPipe`] is what a protocol sees of a connection; [`connect`] attaches one to a
//!   [`TcpStream`](ringhop_runtime::net::TcpStream) through a receive pump and a send pump on
//!   the current reactor.
//!
//! Segments come from the reactor's [`SegmentPool`] and go back to it as soon as they are
//! consumed: a pipe with nothing buffered holds no memory (a pipe with its own segment size
//! keeps two spare segments of it at most).

#![deny(missing_docs)]
#![warn(clippy::undocumented_unsafe_blocks)]

mod duplex;
mod middleware;
mod options;
mod pipe;
mod rate;
mod reader;
mod scheduler;
mod segment;
mod state;
#[cfg(feature = "tls")]
pub mod tls;
mod transport;
pub mod watchdog;
mod writer;

pub use duplex::DuplexPipe;
pub use middleware::{
    Chain, CloseReason, ConnInfo, ConnRecord, ConnectionLog, Middleware, TlsInfo,
};
pub use options::PipeOptions;
pub use pipe::{live_pipes, lock_acquisitions, Pipe};
pub use rate::{send_rate_cuts, MinDataRate};
pub use reader::{PipeReader, Read, ReadResult, SegmentSlice};
pub use scheduler::{cross_thread_wakes, PipeScheduler};
pub use segment::{live_segments, SegmentPool, MAX_SEGMENT_SIZE};
pub use transport::{connect, connect_with, CloseObserver, Linger, Transport, TransportOptions};
pub use writer::{Flush, FlushResult, PipeWriter};
