//! One TLS connection: the handshake (awaited by the middleware), then the record layer (one
//! local task) between the socket's pipe and the protocol's.

use std::cell::RefCell;
use std::future::{poll_fn, Future};
use std::io;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use ringhop_runtime::{self as rt, time};
use rustls::{ProtocolVersion, ServerConfig, ServerConnection};

use super::{FAILURES, HANDSHAKES, OPEN, TRUNCATED};
use crate::duplex::DuplexPipe;
use crate::middleware::join::join;
use crate::middleware::{ConnInfo, TlsInfo};
use crate::options::PipeOptions;
use crate::reader::PipeReader;
use crate::watchdog::Deadline;
use crate::writer::PipeWriter;

/// Runs the handshake on `socket` and starts the record layer; returns the protocol's pipe.
pub(super) async fn accept(
    config: Arc<ServerConfig>,
    timeout: Duration,
    socket: DuplexPipe,
    info: &mut ConnInfo,
) -> io::Result<DuplexPipe> {
    let DuplexPipe {
        input: mut from_client,
        output: mut to_client,
    } = socket;
    let handshake = async {
        let mut conn = ServerConnection::new(config).map_err(tls_error)?;
        handshake(&mut conn, &mut from_client, &mut to_client).await?;
        Ok(conn)
    };
    let deadline = Deadline::new();
    deadline.set(Some(time::deadline_in(timeout)));
    let conn = match deadline.timeout(handshake).await {
        Ok(Ok(conn)) => conn,
        Ok(Err(err)) => {
            FAILURES.fetch_add(1, Ordering::Relaxed);
            return Err(err);
        }
        Err(_) => {
            FAILURES.fetch_add(1, Ordering::Relaxed);
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the TLS handshake did not complete within the handshake timeout",
            ));
        }
    };
    HANDSHAKES.fetch_add(1, Ordering::Relaxed);
    info.tls = Some(Box::new(TlsInfo {
        server_name: conn.server_name().map(str::to_owned),
        alpn: conn.alpn_protocol().map(<[u8]>::to_vec),
        version: match conn.protocol_version() {
            Some(ProtocolVersion::TLSv1_3) => "TLSv1.3",
            Some(ProtocolVersion::TLSv1_2) => "TLSv1.2",
            _ => "TLS",
        },
    }));
    let (plain, application) = DuplexPipe::pair(
        PipeOptions::default()
            .pause_writer_threshold(1024 * 1024)
            .resume_writer_threshold(512 * 1024),
        PipeOptions::default()
            .pause_writer_threshold(64 * 1024)
            .resume_writer_threshold(32 * 1024),
    )?;
    // Counted out however the task ends, also if it is dropped before its first poll.
    let open = OpenGuard::new();
    drop(rt::spawn_local(async move {
        let _open = open;
        let conn = RefCell::new(conn);
        let to_client = RefCell::new(to_client);
        let DuplexPipe {
            input: mut from_server,
            output: mut to_server,
        } = plain;
        join(
            decrypt(&conn, &mut from_client, &mut to_server, &to_client),
            encrypt(&conn, &mut from_server, &to_client),
        )
        .await;
    }));
    Ok(application)
}

/// Counts the record layer in while it lives.
struct OpenGuard;

impl OpenGuard {
    fn new() -> OpenGuard {
        OPEN.fetch_add(1, Ordering::Relaxed);
        OpenGuard
    }
}

impl Drop for OpenGuard {
    fn drop(&mut self) {
        OPEN.fetch_sub(1, Ordering::Relaxed);
    }
}

async fn handshake(
    conn: &mut ServerConnection,
    from_client: &mut PipeReader,
    to_client: &mut PipeWriter,
) -> io::Result<()> {
    loop {
        if conn.wants_write() {
            write_tls(conn, to_client)?;
            let flushed = to_client.flush().await?;
            if flushed.completed {
                return Err(gone());
            }
        }
        if !conn.is_handshaking() {
            return Ok(());
        }
        let result = from_client.read().await?;
        let (len, completed) = (result.len(), result.is_completed());
        let mut consumed = 0;
        let mut failed = None;
        'chunks: for chunk in result.chunks() {
            let mut rest = chunk;
            while !rest.is_empty() && conn.is_handshaking() {
                if let Err(err) = feed(conn, &mut rest) {
                    failed = Some(err);
                    break 'chunks;
                }
            }
            consumed += chunk.len() - rest.len();
            if !conn.is_handshaking() {
                break;
            }
        }
        // What follows the handshake in the same read (the client's first request, often)
        // stays in the pipe for the record layer.
        from_client.advance_to(consumed, if consumed == len { len } else { consumed })?;
        if let Some(err) = failed {
            // The alert (if rustls queued one) goes out before the close.
            let _ = write_tls(conn, to_client);
            let _ = to_client.flush().await;
            return Err(err);
        }
        if completed && consumed == len && conn.is_handshaking() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the client closed during the TLS handshake",
            ));
        }
    }
}

/// Hands rustls the start of `rest` and processes it; `rest` keeps what rustls did not take.
/// After the client's `close_notify` rustls takes nothing more: the rest is dropped.
fn feed(conn: &mut ServerConnection, rest: &mut &[u8]) -> io::Result<()> {
    if conn.read_tls(rest)? == 0 {
        *rest = &[];
    }
    conn.process_new_packets().map_err(tls_error)?;
    Ok(())
}

/// Socket ciphertext → the protocol's plaintext, until either ends.
async fn decrypt(
    conn: &RefCell<ServerConnection>,
    from_client: &mut PipeReader,
    to_server: &mut PipeWriter,
    to_client: &RefCell<PipeWriter>,
) {
    let end = decrypt_loop(conn, from_client, to_server, to_client).await;
    from_client.complete(None);
    match end {
        Ok(()) => to_server.complete(None),
        Err(err) => {
            if err.kind() == io::ErrorKind::UnexpectedEof {
                TRUNCATED.fetch_add(1, Ordering::Relaxed);
            } else {
                // A fatal TLS error: its alert is out; nothing more may be sent, so the
                // socket side ends now (FIN after the alert), whatever the protocol does.
                to_client.borrow_mut().complete(None);
            }
            // What was decrypted before the error (authenticated records) reaches the
            // protocol first, as bytes received before a socket error do: completing drops
            // unflushed bytes, and a client that half-closes without `close_notify` right
            // after its request would lose the end of it (the response then cut short).
            let _ = to_server.flush().await;
            to_server.complete(Some(err));
        }
    }
}

async fn decrypt_loop(
    conn: &RefCell<ServerConnection>,
    from_client: &mut PipeReader,
    to_server: &mut PipeWriter,
    to_client: &RefCell<PipeWriter>,
) -> io::Result<()> {
    loop {
        // Plaintext already decrypted (also what arrived with the handshake's last flight).
        let closed = drain_plaintext(&mut conn.borrow_mut(), to_server)?;
        let flushed = to_server.flush().await?;
        if flushed.completed || closed {
            return Ok(());
        }
        // Wait for ciphertext, or for the protocol to stop reading (an idle client must not
        // keep a connection its protocol closed).
        let read = poll_fn(|cx| {
            if to_server.poll_reader_completed(cx).is_ready() {
                return Poll::Ready(None);
            }
            let mut read = from_client.read();
            match Pin::new(&mut read).poll(cx) {
                Poll::Ready(Ok(result)) => {
                    let mut conn = conn.borrow_mut();
                    let mut consumed = 0;
                    let mut failed = None;
                    for chunk in result.chunks() {
                        let mut rest = chunk;
                        // rustls takes a bounded amount per call; the plaintext of each
                        // step goes to the pipe at once, so its buffer never fills up.
                        while !rest.is_empty() {
                            if let Err(err) = feed(&mut conn, &mut rest)
                                .and_then(|()| drain_plaintext(&mut conn, to_server).map(drop))
                            {
                                failed = Some(err);
                                break;
                            }
                        }
                        consumed += chunk.len() - rest.len();
                        if failed.is_some() {
                            break;
                        }
                    }
                    if result.is_completed() && failed.is_none() && consumed == result.len() {
                        // The client's FIN: rustls decides whether that was a clean close.
                        let _ = conn.read_tls(&mut &[][..]);
                    }
                    Poll::Ready(Some((consumed, failed)))
                }
                Poll::Ready(Err(err)) => Poll::Ready(Some((0, Some(err)))),
                Poll::Pending => Poll::Pending,
            }
        })
        .await;
        let Some((consumed, failed)) = read else {
            return Ok(());
        };
        if consumed > 0 {
            from_client.advance_to(consumed, consumed)?;
        }
        // Alerts, session tickets, key updates: whatever rustls wants to say goes out
        // (unless the socket side was already completed by the other direction).
        let wrote = {
            let mut conn = conn.borrow_mut();
            let mut out = to_client.borrow_mut();
            conn.wants_write() && !out.is_completed() && write_tls(&mut conn, &mut out).is_ok()
        };
        if wrote {
            let _ = poll_fn(|cx| to_client.borrow_mut().poll_flush(cx)).await;
        }
        if let Some(err) = failed {
            return Err(err);
        }
    }
}

/// Moves decrypted bytes into the protocol's pipe (unflushed). `true` once the client sent
/// `close_notify`; an error for a close without it.
fn drain_plaintext(conn: &mut ServerConnection, to_server: &mut PipeWriter) -> io::Result<bool> {
    loop {
        let buf = to_server.buffer_mut(4096);
        match io::Read::read(&mut conn.reader(), buf) {
            Ok(0) => return Ok(true),
            Ok(n) => to_server.advance(n)?,
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(err) => return Err(err),
        }
    }
}

/// The protocol's plaintext → socket ciphertext; `close_notify` at the protocol's clean end.
async fn encrypt(
    conn: &RefCell<ServerConnection>,
    from_server: &mut PipeReader,
    to_client: &RefCell<PipeWriter>,
) {
    let end = encrypt_loop(conn, from_server, to_client).await;
    from_server.complete(None);
    let mut to_client = to_client.borrow_mut();
    // An error end resets the connection: the client must not take a cut response for a
    // complete one.
    to_client.complete(end.err());
}

async fn encrypt_loop(
    conn: &RefCell<ServerConnection>,
    from_server: &mut PipeReader,
    to_client: &RefCell<PipeWriter>,
) -> io::Result<()> {
    loop {
        let read = poll_fn(|cx| {
            let mut out = to_client.borrow_mut();
            // The socket side is gone, or was ended by a fatal error of the other direction.
            if out.is_completed() || out.poll_reader_completed(cx).is_ready() {
                return Poll::Ready(None);
            }
            drop(out);
            let mut read = from_server.read();
            match Pin::new(&mut read).poll(cx) {
                Poll::Ready(Ok(result)) => {
                    let mut conn = conn.borrow_mut();
                    let mut out = to_client.borrow_mut();
                    let written = result
                        .chunks()
                        .try_for_each(|chunk| encrypt_chunk(&mut conn, chunk, &mut out));
                    Poll::Ready(Some(
                        written.map(|()| (result.len(), result.is_completed())),
                    ))
                }
                Poll::Ready(Err(err)) => Poll::Ready(Some(Err(err))),
                Poll::Pending => Poll::Pending,
            }
        })
        .await;
        let Some(read) = read else {
            // The socket side is gone: nothing more can be sent.
            return Ok(());
        };
        let (len, completed) = read?;
        from_server.advance_to(len, len)?;
        if to_client.borrow().is_completed() {
            return Ok(());
        }
        if completed {
            let mut conn = conn.borrow_mut();
            conn.send_close_notify();
            write_tls(&mut conn, &mut to_client.borrow_mut())?;
        }
        let flushed = poll_fn(|cx| to_client.borrow_mut().poll_flush(cx)).await?;
        if completed || flushed.completed {
            return Ok(());
        }
    }
}

fn encrypt_chunk(
    conn: &mut ServerConnection,
    mut chunk: &[u8],
    out: &mut PipeWriter,
) -> io::Result<()> {
    while !chunk.is_empty() {
        let n = io::Write::write(&mut conn.writer(), chunk)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "TLS: the connection takes no more plaintext",
            ));
        }
        chunk = &chunk[n..];
        write_tls(conn, out)?;
    }
    Ok(())
}

/// Moves every pending TLS record into `out` (unflushed).
fn write_tls(conn: &mut ServerConnection, out: &mut PipeWriter) -> io::Result<()> {
    while conn.wants_write() {
        conn.write_tls(&mut Sink(out))?;
    }
    Ok(())
}

/// `io::Write` into a pipe: copies, never blocks (the caller flushes and meets backpressure).
struct Sink<'a>(&'a mut PipeWriter);

impl io::Write for Sink<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn tls_error(err: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("TLS: {err}"))
}

fn gone() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionAborted,
        "the connection closed during the TLS handshake",
    )
}
