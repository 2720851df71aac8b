//! The pumps that attach a [`DuplexPipe`] to a socket — the HopDuplexPipe analog.
//!
//! - The receive pump moves socket bytes into the inbound pipe: a multishot `recv` on the
//!   reactor's provided-buffer ring (no buffer pinned while idle), each completion copied into
//!   the pipe and its buffer returned at once; all completions ready together are flushed
//!   once. When the flush pauses (the application is behind), the pump stops receiving
//!   until it resumes, so backpressure reaches TCP. EOF completes the inbound pipe; a socket
//!   error completes it with that error.
//! - The send pump moves outbound bytes to the socket: every chunk of a read in one
//!   `sendmsg`, straight from the pipe's segments (no copy), partial sends retried, and
//!   `advance_to` only after the completion. When the application completes the outbound
//!   pipe, the rest is sent and the socket's write side shut down.
//!
//! Both pumps run as local tasks on the current reactor; the socket closes when both ended.

use std::future::{poll_fn, Future};
use std::io;
use std::pin::Pin;
use std::task::Poll;

use ringhop_runtime::net::TcpStream;
use ringhop_runtime::{self as rt, JoinHandle};

use crate::duplex::DuplexPipe;
use crate::options::PipeOptions;
use crate::reader::{PipeReader, SegmentSlice};
use crate::writer::PipeWriter;

/// Pipe settings of a transport: inbound 1 MiB / 512 KiB, outbound 64 KiB / 32 KiB by
/// default (as Kestrel's transports).
#[derive(Clone, Debug)]
pub struct TransportOptions {
    /// Options of the pipe the receive pump writes and the application reads.
    pub inbound: PipeOptions,
    /// Options of the pipe the application writes and the send pump reads.
    pub outbound: PipeOptions,
}

impl Default for TransportOptions {
    fn default() -> Self {
        TransportOptions {
            inbound: PipeOptions::default()
                .pause_writer_threshold(1024 * 1024)
                .resume_writer_threshold(512 * 1024),
            outbound: PipeOptions::default()
                .pause_writer_threshold(64 * 1024)
                .resume_writer_threshold(32 * 1024),
        }
    }
}

/// Attaches `stream` to a new [`DuplexPipe`] with [`TransportOptions::default`] and returns
/// the application end. Must be called on a reactor; the pumps run there.
///
/// ```no_run
/// use ringhop_runtime::{self as rt, net::TcpListener};
/// rt::run(|| async {
///     let listener = TcpListener::bind("127.0.0.1:7000".parse().unwrap()).unwrap();
///     while let Ok(stream) = listener.accept().await {
///         let mut pipe = ringhop_pipes::connect(stream).unwrap();
///         rt::spawn_local(async move {
///             // Echo: copy every byte from input to output.
///             while let Ok(result) = pipe.input.read().await {
///                 let bytes = result.to_vec();
///                 let (len, done) = (result.len(), result.is_completed());
///                 pipe.input.advance_to(len, len).unwrap();
///                 if pipe.output.write_all(&bytes).await.is_err() || done {
///                     break;
///                 }
///             }
///         });
///     }
/// })
/// .unwrap();
/// ```
pub fn connect(stream: TcpStream) -> io::Result<DuplexPipe> {
    connect_with(stream, TransportOptions::default())
}

/// [`connect`] with explicit pipe options.
pub fn connect_with(stream: TcpStream, options: TransportOptions) -> io::Result<DuplexPipe> {
    Ok(Transport::start(stream, options)?.pipe)
}

/// A started transport: the application's pipe end and the pump tasks (for callers that want
/// to abort or await them).
#[derive(Debug)]
pub struct Transport {
    /// The application end.
    pub pipe: DuplexPipe,
    /// The receive pump; resolves when the inbound side ended.
    pub recv_pump: JoinHandle<()>,
    /// The send pump; resolves when the outbound side ended.
    pub send_pump: JoinHandle<()>,
}

impl Transport {
    /// Starts both pumps on the current reactor.
    pub fn start(stream: TcpStream, options: TransportOptions) -> io::Result<Transport> {
        let (transport, application) = DuplexPipe::pair(options.inbound, options.outbound)?;
        let DuplexPipe { input, output } = transport;
        let recv_pump = rt::spawn_local(recv_pump(stream.clone(), output));
        let send_pump = rt::spawn_local(send_pump(stream, input));
        Ok(Transport {
            pipe: application,
            recv_pump,
            send_pump,
        })
    }

    /// Stops both pumps at once: their in-flight ops are cancelled, the application sees
    /// both pipes completed, and the socket closes once the kernel released it.
    pub fn abort(&self) {
        self.recv_pump.abort();
        self.send_pump.abort();
    }
}

/// Socket → inbound pipe.
async fn recv_pump(stream: TcpStream, mut inbound: PipeWriter) {
    let result = match stream.recv_multishot() {
        Ok(chunks) => recv_multishot_loop(chunks, &mut inbound).await,
        Err(_) => recv_loop(&stream, &mut inbound).await,
    };
    match result {
        Ok(()) => inbound.complete(None),
        Err(err) => inbound.complete(Some(err)),
    }
}

/// Returns when the peer closed or the application stopped reading.
async fn recv_multishot_loop(
    mut chunks: ringhop_runtime::net::RecvStream,
    inbound: &mut PipeWriter,
) -> io::Result<()> {
    loop {
        let chunk = chunks.recv().await?;
        if chunk.is_empty() {
            return Ok(());
        }
        inbound.write(&chunk);
        drop(chunk);
        // Take every completion that is already here, then flush once for the batch.
        let mut eof = false;
        while let Poll::Ready(chunk) = poll_fn(|cx| Poll::Ready(chunks.poll_recv(cx))).await {
            let chunk = chunk?;
            if chunk.is_empty() {
                eof = true;
                break;
            }
            inbound.write(&chunk);
        }
        let mut flush = inbound.flush();
        let result = match poll_fn(|cx| Poll::Ready(Pin::new(&mut flush).poll(cx))).await {
            Poll::Ready(result) => result?,
            Poll::Pending => {
                // The application is behind: stop receiving (the socket buffer fills and TCP
                // pushes back on the peer) until the pipe drains below its resume threshold.
                chunks.pause();
                flush.await?
            }
        };
        if result.completed || eof {
            return Ok(());
        }
    }
}

/// Fallback for kernels without provided-buffer rings: one `recv` at a time into a buffer
/// owned by the pump.
async fn recv_loop(stream: &TcpStream, inbound: &mut PipeWriter) -> io::Result<()> {
    let mut buf = Vec::with_capacity(16 * 1024);
    loop {
        let (result, filled) = stream.recv(buf).await;
        buf = filled;
        if result? == 0 {
            return Ok(());
        }
        inbound.write(&buf);
        buf.clear();
        if inbound.flush().await?.completed {
            return Ok(());
        }
    }
}

/// Outbound pipe → socket.
async fn send_pump(stream: TcpStream, mut outbound: PipeReader) {
    let mut slices: Vec<SegmentSlice> = Vec::new();
    match send_loop(&stream, &mut outbound, &mut slices).await {
        Ok(()) => {
            let _ = stream.shutdown(std::net::Shutdown::Write).await;
            outbound.complete(None);
        }
        Err(err) => {
            let _ = stream.shutdown(std::net::Shutdown::Both).await;
            outbound.complete(Some(err));
        }
    }
}

/// Returns when the application completed the outbound pipe and all of it was sent.
async fn send_loop(
    stream: &TcpStream,
    outbound: &mut PipeReader,
    slices: &mut Vec<SegmentSlice>,
) -> io::Result<()> {
    loop {
        let result = outbound.read().await?;
        let (len, completed) = (result.len(), result.is_completed());
        slices.extend(result.segments());
        let mut sent = 0;
        while sent < len {
            let (n, back) = stream.writev(std::mem::take(slices)).await;
            *slices = back;
            let n = n?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::WriteZero,
                    "socket took no bytes",
                ));
            }
            sent += n;
            skip_sent(slices, n);
        }
        slices.clear();
        outbound.advance_to(len, len)?;
        if completed {
            return Ok(());
        }
    }
}

/// Drops the first `n` sent bytes from the front of `slices`.
fn skip_sent(slices: &mut Vec<SegmentSlice>, mut n: usize) {
    let mut fully_sent = 0;
    for slice in slices.iter_mut() {
        if n >= slice.len() {
            n -= slice.len();
            fully_sent += 1;
        } else {
            slice.skip(n);
            break;
        }
    }
    slices.drain(..fully_sent);
}
