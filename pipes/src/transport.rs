//! The pumps that attach a [`DuplexPipe`] to a socket — the HopDuplexPipe analog.
//!
//! - The receive pump moves socket bytes into the inbound pipe: a multishot `recv` on the
//!   reactor's provided-buffer ring (no buffer pinned while idle), each completion copied into
//!   the pipe and its buffer returned at once; all completions ready together are flushed
//!   once. When the flush pauses (the application is behind), the pump stops receiving
//!   until it resumes, so backpressure reaches TCP. EOF completes the inbound pipe; a socket
//!   error completes it with that error, after the bytes received before it.
//! - The send pump moves outbound bytes to the socket: the chunks of a read in `sendmsg`s
//!   of at most 1024 iovecs, straight from the pipe's segments (no copy), partial sends
//!   retried, and `advance_to` only after the completion. When the application completes
//!   the outbound pipe, the rest is sent and the socket's write side shut down (FIN); when
//!   it completes it with an error, the connection is reset (RST) instead.
//!
//! Closing: once the application completed both pipe ends, the socket must not outlive the
//! connection just because the peer keeps its end open. After the send side drained and
//! the FIN went out, the receive pump reads and discards until the peer's FIN, or for at
//! most [`Linger`] (time and bytes), then the socket closes. Closing at once with unread
//! input would make the kernel send an RST that can destroy the answer (a 400, a 413) the
//! peer has not read yet.
//!
//! Both pumps run as local tasks on the current reactor; the socket closes when both ended.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::{poll_fn, Future};
use std::hash::{BuildHasherDefault, Hasher};
use std::io;
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use ringhop_runtime::net::{RecvConsumer, RecvStream, TcpStream, Writev};
use ringhop_runtime::{self as rt, coop, time, JoinHandle};
use ringhop_runtime::{BeforeSubmit, CompletionHook};

use crate::duplex::DuplexPipe;
use crate::options::PipeOptions;
use crate::rate::{MinDataRate, SendProgress};
use crate::reader::{PipeReader, SegmentSlice};
use crate::watchdog::{self, Deadline, Watched};
use crate::writer::{FlushResult, PipeWriter};

/// Pipe settings of a transport: inbound 1 MiB / 512 KiB, outbound 64 KiB / 32 KiB by
/// default (as Kestrel's transports), and how long a finished connection waits for the
/// peer's FIN.
#[derive(Clone, Debug)]
pub struct TransportOptions {
    /// Options of the pipe the receive pump writes and the application reads.
    pub inbound: PipeOptions,
    /// Options of the pipe the application writes and the send pump reads.
    pub outbound: PipeOptions,
    /// How long the socket stays open for the peer's FIN once the application is done.
    pub linger: Linger,
    /// How slowly the peer may take the output: below this rate (averaged over the time
    /// output waited to be sent, after the grace period) the connection is reset and its
    /// pipes released. `None` (the default here; the HTTP servers set 240 B/s after 5 s):
    /// no limit.
    pub min_send_rate: Option<MinDataRate>,
}

/// The bounded wait between "the application completed both pipe ends and the send side
/// drained (FIN sent)" and closing the socket: input is read and discarded until the peer's
/// FIN, `timeout`, or `max_bytes`, whichever comes first. Default: 2 s, 16 MiB: a client
/// that goes on sending an upload after an early answer (curl does, after a 2xx) is read
/// to its end within that, not reset under its writes (a reset can destroy the answer
/// before the client reads it). The timeout is kept by the reactor's watchdog, so it ends
/// up to a second late.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Linger {
    /// The longest wait for the peer's FIN.
    pub timeout: Duration,
    /// The most input read and discarded while waiting.
    pub max_bytes: u64,
}

impl Default for Linger {
    fn default() -> Self {
        Linger {
            timeout: Duration::from_secs(2),
            max_bytes: 16 * 1024 * 1024,
        }
    }
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
            linger: Linger::default(),
            min_send_rate: None,
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

/// Told when a transport's connection is over: both pumps ended, so its socket is closed
/// (see [`Transport::start_observed`]). A server counts its open sockets with it: the
/// application may be done with a connection long before the socket is (a last response
/// still going out to a slow reader, the linger for the peer's FIN, a protocol handed to
/// another task).
pub trait CloseObserver {
    /// The transport's pumps ended (however they ended, a panic included).
    fn closed(&self);
}

impl Transport {
    /// Starts both pumps on the current reactor.
    pub fn start(stream: TcpStream, options: TransportOptions) -> io::Result<Transport> {
        Transport::start_with(stream, options, None)
    }

    /// [`start`](Self::start), and tells `observer` when the connection is over.
    ///
    /// ```
    /// use std::cell::Cell;
    /// use std::rc::Rc;
    /// use ringhop_pipes::{CloseObserver, Transport, TransportOptions};
    /// use ringhop_runtime::net::{TcpListener, TcpStream};
    ///
    /// struct Open(Cell<usize>);
    /// impl CloseObserver for Open {
    ///     fn closed(&self) {
    ///         self.0.set(self.0.get() - 1);
    ///     }
    /// }
    ///
    /// let rt = ringhop_runtime::Runtime::builder().reactors(1).build().unwrap();
    /// rt.block_on_local(|| async {
    ///     let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    ///     let addr = listener.local_addr().unwrap();
    ///     let client = std::thread::spawn(move || drop(std::net::TcpStream::connect(addr)));
    ///     let stream = listener.accept().await.unwrap();
    ///     let open = Rc::new(Open(Cell::new(1)));
    ///     let transport =
    ///         Transport::start_observed(stream, TransportOptions::default(), open.clone()).unwrap();
    ///     drop(transport.pipe);
    ///     let _ = transport.send_pump.await;
    ///     let _ = transport.recv_pump.await;
    ///     client.join().unwrap();
    ///     assert_eq!(open.0.get(), 0);
    /// });
    /// ```
    pub fn start_observed(
        stream: TcpStream,
        options: TransportOptions,
        observer: Rc<dyn CloseObserver>,
    ) -> io::Result<Transport> {
        Transport::start_with(stream, options, Some(observer))
    }

    fn start_with(
        stream: TcpStream,
        options: TransportOptions,
        observer: Option<Rc<dyn CloseObserver>>,
    ) -> io::Result<Transport> {
        let (transport, application) = DuplexPipe::pair(options.inbound, options.outbound)?;
        let DuplexPipe { input, output } = transport;
        let pumps = Rc::new(Pumps::new(
            options.min_send_rate,
            stream.clone(),
            output,
            input,
            observer,
        ));
        if options.min_send_rate.is_some() {
            let watched: Weak<Pumps> = Rc::downgrade(&pumps);
            watchdog::watch(watched);
        }
        let receiver = match stream.recv_multishot() {
            Ok(mut chunks) => {
                // Received bytes go into the inbound pipe as their completions are reaped,
                // while the pump waits in its steady state: no task poll per chunk.
                let consumer: Rc<dyn RecvConsumer> = pumps.clone();
                chunks.set_consumer(consumer);
                Receiver::Multishot(chunks)
            }
            Err(_) => Receiver::Single(Box::new(SingleReceiver {
                stream: stream.clone(),
                buf: Some(Vec::with_capacity(16 * 1024)),
                op: None,
            })),
        };
        let recv_pump = rt::spawn_local(recv_pump(receiver, pumps.clone(), options.linger));
        let send_pump = rt::spawn_local(send_pump(pumps));
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

/// How the send pump ended, for the receive pump's linger.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ended {
    Running,
    /// Everything sent and the FIN queued: wait (bounded) for the peer's FIN.
    Drained,
    /// The connection is being reset (or is dead): close without waiting.
    Reset,
}

/// What the two pumps share: the send pump's end, watched by the receive pump; its progress,
/// watched by the reactor's watchdog; and the inbound pipe's writer, which the receive pump
/// and the inline consumer of its received bytes take turns with.
struct Pumps {
    ended: Cell<Ended>,
    /// The receive pump's waker: for the send pump's end, and for the consumer handing work
    /// back.
    waker: Cell<Option<Waker>>,
    progress: Option<SendProgress>,
    /// The inbound pipe's writing end.
    inbound: RefCell<PipeWriter>,
    /// The receive pump waits in its steady state (nothing received that it has not
    /// flushed, not paused): until it is polled again, received bytes are the consumer's.
    steady: Cell<bool>,
    /// The consumer's flush did not complete (the pipe is full, or the reader is gone): the
    /// receive pump finishes it.
    handed_back: Cell<bool>,
    /// The send side, driven by the send pump and by its sends' completions.
    sender: RefCell<Sender>,
    /// Queued to send right before the reactor's next submit (see [`defer_send`]).
    send_queued: Cell<bool>,
    /// Told when the pumps are dropped: both ended.
    observer: Option<Rc<dyn CloseObserver>>,
}

impl Drop for Pumps {
    fn drop(&mut self) {
        if let Some(observer) = self.observer.take() {
            observer.closed();
        }
    }
}

impl Pumps {
    fn new(
        min_send_rate: Option<MinDataRate>,
        stream: TcpStream,
        inbound: PipeWriter,
        outbound: PipeReader,
        observer: Option<Rc<dyn CloseObserver>>,
    ) -> Self {
        outbound.mark_send_pump();
        Pumps {
            ended: Cell::new(Ended::Running),
            waker: Cell::new(None),
            progress: min_send_rate.map(SendProgress::new),
            inbound: RefCell::new(inbound),
            steady: Cell::new(false),
            handed_back: Cell::new(false),
            sender: RefCell::new(Sender {
                stream,
                outbound,
                slices: Vec::new(),
                send: None,
                len: 0,
                sent: 0,
                completed: false,
                waker: None,
                outcome: None,
            }),
            send_queued: Cell::new(false),
            observer,
        }
    }

    fn set(&self, ended: Ended) {
        self.ended.set(ended);
        if let Some(waker) = self.waker.take() {
            waker.wake();
        }
    }

    /// Keeps the receive pump's waker (cloned only when it changed).
    fn register(&self, waker: &Waker) {
        let current = self.waker.take();
        self.waker.set(match current {
            Some(current) if current.will_wake(waker) => Some(current),
            _ => Some(waker.clone()),
        });
    }

    fn poll_ended(&self, cx: &mut Context<'_>) -> Poll<Ended> {
        match self.ended.get() {
            Ended::Running => {
                self.register(cx.waker());
                Poll::Pending
            }
            ended => Poll::Ready(ended),
        }
    }
}

impl RecvConsumer for Pumps {
    fn offer(&self, bytes: &[u8]) -> bool {
        if !self.steady.get() {
            return false;
        }
        let Ok(mut inbound) = self.inbound.try_borrow_mut() else {
            return false;
        };
        let Some(waker) = self.waker.take() else {
            return false;
        };
        // The flush runs with the pump's waker: if it has to wait (the pipe is full), the
        // pump is woken when it may go on. Written and flushed under one lock.
        let flushed = inbound.write_and_poll_flush(bytes, &mut Context::from_waker(&waker));
        if !matches!(
            flushed,
            Poll::Ready(Ok(FlushResult {
                completed: false,
                ..
            }))
        ) {
            self.steady.set(false);
            self.handed_back.set(true);
            waker.wake_by_ref();
        }
        self.waker.set(Some(waker));
        true
    }
}

impl Watched for Pumps {
    fn check(&self, now: std::time::Instant) -> bool {
        if self.ended.get() != Ended::Running {
            return false;
        }
        if let Some(progress) = &self.progress {
            let cut = match self.sender.try_borrow() {
                Ok(sender) => progress.check(now, &sender.stream),
                // Being driven right now: checked at the next tick.
                Err(_) => false,
            };
            if cut {
                self.wake_send_pump();
            }
        }
        true
    }
}

/// However the send pump goes (also aborted or dropped mid-send): its send in flight is
/// cancelled, the outbound pipe completed, and — unless it drained — the send side marked
/// reset for the receive pump.
struct SendPumpGone(Rc<Pumps>);

impl Drop for SendPumpGone {
    fn drop(&mut self) {
        if let Ok(mut sender) = self.0.sender.try_borrow_mut() {
            if let Some(waker) = &sender.waker {
                unregister(waker);
            }
            sender.send = None;
            sender.slices.clear();
            sender.outbound.complete(None);
        }
        if self.0.ended.get() == Ended::Running {
            self.0.set(Ended::Reset);
        }
    }
}

/// One `recv` in flight on the fallback path (it owns the buffer until it completes).
type SingleRecv = Pin<Box<dyn Future<Output = (io::Result<usize>, Vec<u8>)>>>;

/// Where the receive pump's bytes come from: a multishot `recv` on the provided-buffer ring,
/// or, on kernels without buffer rings, one `recv` at a time into a buffer of the pump's.
enum Receiver {
    Multishot(RecvStream),
    /// Boxed: the rare fallback should not widen every connection's pump.
    Single(Box<SingleReceiver>),
}

/// The fallback receiver's state.
struct SingleReceiver {
    stream: TcpStream,
    buf: Option<Vec<u8>>,
    op: Option<SingleRecv>,
}

impl Receiver {
    /// The next received bytes, handed to `take`; `Ok(0)` when the peer closed its side.
    fn poll_recv_with(
        &mut self,
        cx: &mut Context<'_>,
        take: impl FnOnce(&[u8]),
    ) -> Poll<io::Result<usize>> {
        match self {
            Receiver::Multishot(chunks) => chunks.poll_recv(cx).map_ok(|chunk| {
                take(&chunk);
                chunk.len()
            }),
            Receiver::Single(single) => {
                let SingleReceiver { stream, buf, op } = &mut **single;
                let recv = op.get_or_insert_with(|| {
                    let mut buf = buf.take().unwrap_or_default();
                    buf.clear();
                    Box::pin(stream.recv(buf))
                });
                let (result, filled) = std::task::ready!(recv.as_mut().poll(cx));
                *op = None;
                let result = result.inspect(|&n| take(&filled[..n]));
                *buf = Some(filled);
                Poll::Ready(result)
            }
        }
    }

    /// Stops receiving until the next poll (backpressure).
    fn pause(&mut self) {
        if let Receiver::Multishot(chunks) = self {
            chunks.pause();
        }
    }
}

/// Socket → inbound pipe; then, once the application stopped reading, the linger.
// A plain fn returning an async block, not an `async fn`: an async fn keeps every argument
// twice in its state (the captured argument and the local it is moved into), and these
// states live as long as the connection.
#[allow(clippy::manual_async_fn)] // on purpose: see the comment above
fn recv_pump(mut receiver: Receiver, pumps: Rc<Pumps>, linger: Linger) -> impl Future<Output = ()> {
    async move {
        let finished = receive(&mut receiver, &pumps).await;
        // From here on the consumer takes nothing: what arrives is the linger's to discard.
        pumps.steady.set(false);
        let complete = |error| pumps.inbound.borrow_mut().complete(error);
        match finished {
            Ok(Finished::PeerClosed) => complete(None),
            Ok(Finished::Reset) => complete(Some(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "the connection was reset",
            ))),
            Ok(Finished::ReaderGone) => {
                complete(None);
                // Boxed: this cold phase (with its timer) would otherwise widen the state every
                // idle connection's pump carries.
                Box::pin(linger_for_fin(&mut receiver, &pumps, linger)).await;
            }
            Err(err) => complete(Some(err)),
        }
    }
}

/// Why [`receive`] returned.
enum Finished {
    PeerClosed,
    /// The application completed the inbound pipe: nobody reads any more.
    ReaderGone,
    /// The send side reset the connection: stop at once, so the reset goes out now.
    Reset,
}

/// Returns when the peer closed or the application stopped reading.
#[allow(clippy::manual_async_fn)] // not an `async fn`: see `recv_pump`
fn receive<'a>(
    receiver: &'a mut Receiver,
    pumps: &'a Pumps,
) -> impl Future<Output = io::Result<Finished>> + 'a {
    async move {
        loop {
            // Wait for bytes, for the application to stop reading (an idle peer that never
            // sends again must not keep the pump, and the socket, alive), for a reset, or for
            // the consumer to hand a flush back. While this waits, the consumer takes what
            // arrives.
            let first = poll_fn(|cx| {
                pumps.steady.set(false);
                if pumps.handed_back.take() {
                    return Poll::Ready(Ok(None));
                }
                let mut inbound = pumps.inbound.borrow_mut();
                if let Poll::Ready(received) =
                    receiver.poll_recv_with(cx, |bytes| inbound.write(bytes))
                {
                    return Poll::Ready(Ok(Some(received)));
                }
                if inbound.poll_reader_completed(cx).is_ready() {
                    return Poll::Ready(Err(Finished::ReaderGone));
                }
                match pumps.poll_ended(cx) {
                    Poll::Ready(Ended::Reset) => Poll::Ready(Err(Finished::Reset)),
                    _ => {
                        pumps.steady.set(true);
                        Poll::Pending
                    }
                }
            })
            .await;
            let mut end = None;
            match first {
                Err(finished) => return Ok(finished),
                // The consumer's flush is waiting: finish it below.
                Ok(None) => {}
                Ok(Some(received)) => {
                    if received? == 0 {
                        return Ok(Finished::PeerClosed);
                    }
                    end = poll_fn(|cx| Poll::Ready(take_ready(cx, receiver, pumps))).await;
                }
            }
            let flush = |cx: &mut Context<'_>| pumps.inbound.borrow_mut().poll_flush(cx);
            let flushed = match poll_fn(|cx| Poll::Ready(flush(cx))).await {
                Poll::Ready(result) => result,
                Poll::Pending => {
                    // The application is behind: stop receiving (the socket buffer fills and TCP
                    // pushes back on the peer) until the pipe drains below its resume threshold.
                    receiver.pause();
                    poll_fn(flush).await
                }
            };
            // The reader completing with an error is still the reader going away: linger.
            let Ok(result) = flushed else {
                return Ok(Finished::ReaderGone);
            };
            if let Some(end) = end {
                return end;
            }
            if result.completed {
                return Ok(Finished::ReaderGone);
            }
        }
    }
}

/// Takes every completion that is already here into the inbound pipe (the caller flushes
/// once for the batch), and the end found among them, if any (EOF, a reset), which comes
/// after the bytes before it. The batch stops at the pause threshold: under epoll a fast
/// sender would otherwise keep the socket readable, and the batch (and the pipe) would grow
/// without bound.
fn take_ready(
    cx: &mut Context<'_>,
    receiver: &mut Receiver,
    pumps: &Pumps,
) -> Option<io::Result<Finished>> {
    let mut inbound = pumps.inbound.borrow_mut();
    let pause = inbound.pause_threshold();
    while pause == 0 || inbound.unflushed_len() < pause {
        match receiver.poll_recv_with(cx, |bytes| inbound.write(bytes)) {
            Poll::Ready(Ok(0)) => return Some(Ok(Finished::PeerClosed)),
            Poll::Ready(Ok(_)) => {}
            Poll::Ready(Err(err)) => return Some(Err(err)),
            Poll::Pending => break,
        }
    }
    None
}

/// The application is done reading: discard input until the send pump ended; then, if it
/// sent a FIN, until the peer's FIN or the linger's bounds. The socket closes after this.
async fn linger_for_fin(receiver: &mut Receiver, pumps: &Pumps, linger: Linger) {
    let ended = loop {
        let next = poll_fn(|cx| match pumps.poll_ended(cx) {
            Poll::Ready(ended) => Poll::Ready(Err(ended)),
            Poll::Pending => receiver.poll_recv_with(cx, |_| {}).map(Ok),
        })
        .await;
        match next {
            Err(ended) => break ended,
            Ok(Ok(n)) if n > 0 => {}
            // The peer closed or the socket failed: nothing to wait for.
            Ok(_) => return,
        }
    };
    if ended == Ended::Reset {
        return;
    }
    // On the watchdog, like every other connection deadline: no timer of its own.
    let deadline = Deadline::new();
    deadline.set(Some(time::deadline_in(linger.timeout)));
    let mut discarded = 0u64;
    while discarded < linger.max_bytes {
        let next = poll_fn(|cx| {
            if deadline.poll_expired(cx).is_ready() {
                return Poll::Ready(None);
            }
            receiver.poll_recv_with(cx, |_| {}).map(Some)
        })
        .await;
        match next {
            Some(Ok(n)) if n > 0 => discarded += n as u64,
            _ => return,
        }
    }
}

/// Outbound pipe → socket.
// Not an `async fn`, for the reason given at `recv_pump`.
#[allow(clippy::manual_async_fn)] // on purpose: see the comment above
fn send_pump(pumps: Rc<Pumps>) -> impl Future<Output = ()> {
    async move {
        let _gone = SendPumpGone(pumps.clone());
        let outcome = poll_fn(|cx| pumps.poll_send(cx)).await;
        let stream = pumps.sender.borrow().stream.clone();
        match outcome {
            Ok(()) => {
                let _ = stream.shutdown(std::net::Shutdown::Write).await;
                pumps.sender.borrow_mut().outbound.complete(None);
                pumps.set(Ended::Drained);
            }
            Err(err) => {
                // The application aborted the connection (completed the pipe with an error) or
                // the socket failed: reset it, so the peer cannot take what it got for a
                // complete answer.
                let _ = stream.set_linger(Some(Duration::ZERO));
                pumps.sender.borrow_mut().outbound.complete(Some(err));
                pumps.set(Ended::Reset);
            }
        }
    }
}

/// The send side: reads of the outbound pipe sent as `sendmsg`s of its segments (no copy),
/// partial sends retried, `advance_to` only after the completion.
///
/// Driven by the send pump task when the application flushes, and inline by each send's
/// completion (a [`CompletionHook`]): the completion advances the pipe and starts the next
/// send (pipelined responses flushed meanwhile) without a task poll. Whichever drives it
/// uses the pump's waker, so what it waits for next wakes the pump.
struct Sender {
    stream: TcpStream,
    outbound: PipeReader,
    slices: Vec<SegmentSlice>,
    /// The send in flight.
    send: Option<Writev<SegmentSlice>>,
    /// The read being sent: its length, how much of it went out, whether the pipe completed
    /// after it.
    len: usize,
    sent: usize,
    completed: bool,
    /// The send pump's waker.
    waker: Option<Waker>,
    /// How the send side ended, when a completion found it: the pump takes it.
    outcome: Option<io::Result<()>>,
}

impl Pumps {
    /// The send pump's poll: drives the sender, and hands the send in flight's completion to
    /// the hook.
    fn poll_send(self: &Rc<Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut sender = self.sender.borrow_mut();
        if let Some(outcome) = sender.outcome.take() {
            return Poll::Ready(outcome);
        }
        match &sender.waker {
            Some(waker) if waker.will_wake(cx.waker()) => {}
            _ => {
                if let Some(old) = sender.waker.replace(cx.waker().clone()) {
                    unregister(&old);
                }
                register(cx.waker(), self);
            }
        }
        let polled = sender.poll_drive(cx, self.progress.as_ref());
        if polled.is_pending() {
            if let Some(send) = &sender.send {
                send.on_completion(self.clone());
            }
        }
        polled
    }
}

impl CompletionHook for Pumps {
    fn completed(self: Rc<Self>) {
        if !self.drive_inline() {
            self.wake_send_pump();
        }
    }
}

impl BeforeSubmit for Pumps {
    fn before_submit(self: Rc<Self>) {
        self.send_queued.set(false);
        if !self.drive_inline() {
            self.wake_send_pump();
        }
    }
}

impl Pumps {
    /// Drives the send side outside the pump task — from a send's completion, or right
    /// before the reactor submits after the application flushed — with the pump's waker, so
    /// whatever it waits for next wakes the pump. `false` when it could not (the pump is
    /// being polled, or is done).
    fn drive_inline(self: &Rc<Self>) -> bool {
        let Ok(mut sender) = self.sender.try_borrow_mut() else {
            return false;
        };
        if sender.outcome.is_some() {
            return false;
        }
        // Taken out and put back rather than cloned: no reference count traffic per send.
        let Some(waker) = sender.waker.take() else {
            return false;
        };
        let polled = sender.poll_drive(&mut Context::from_waker(&waker), self.progress.as_ref());
        sender.waker = Some(waker);
        match polled {
            Poll::Pending => {
                if let Some(send) = &sender.send {
                    send.on_completion(self.clone());
                }
            }
            // Done (or failed): the pump finishes (FIN or reset) in its own poll.
            Poll::Ready(outcome) => {
                sender.outcome = Some(outcome);
                drop(sender);
                self.wake_send_pump();
            }
        }
        true
    }

    fn wake_send_pump(&self) {
        if let Ok(Some(waker)) = self.sender.try_borrow().as_deref().map(|s| &s.waker) {
            waker.wake_by_ref();
        }
    }
}

thread_local! {
    /// This reactor's send pumps, by their task's waker (its data pointer): how a flush,
    /// which only has the waker the pipe kept, finds the connection it belongs to. A waker
    /// keeps its task's memory alive, so a live waker's address names one task.
    static SEND_PUMPS: RefCell<HashMap<usize, Weak<Pumps>, BuildHasherDefault<AddressHasher>>> =
        RefCell::new(HashMap::default());
}

fn register(waker: &Waker, pumps: &Rc<Pumps>) {
    SEND_PUMPS.with(|pumps_by_waker| {
        pumps_by_waker
            .borrow_mut()
            .insert(waker.data() as usize, Rc::downgrade(pumps))
    });
}

fn unregister(waker: &Waker) {
    // A thread exiting may have dropped the map already: nothing to clean then.
    let _ = SEND_PUMPS
        .try_with(|pumps_by_waker| pumps_by_waker.borrow_mut().remove(&(waker.data() as usize)));
}

/// Called when a pipe on this reactor wakes its reader (`PipeScheduler::schedule`): when the
/// waker is a transport's send pump on this reactor, the connection is queued to send right before the reactor's
/// next submit — once, however many times it flushes in this turn — and `true` says the
/// waker need not be woken. A plain request then polls one task, the application's, on
/// either driver (under epoll the driver receives for the receive pump at each edge).
pub(crate) fn defer_send(waker: &Waker) -> bool {
    let pumps = SEND_PUMPS
        .try_with(|pumps_by_waker| {
            let pumps_by_waker = pumps_by_waker.borrow();
            if pumps_by_waker.is_empty() {
                return None;
            }
            pumps_by_waker.get(&(waker.data() as usize))?.upgrade()
        })
        .ok()
        .flatten();
    let Some(pumps) = pumps else {
        return false;
    };
    if !pumps.send_queued.replace(true) {
        let queued: Rc<dyn BeforeSubmit> = pumps.clone();
        if !rt::before_submit(queued) {
            pumps.send_queued.set(false);
            return false;
        }
    }
    true
}

/// Hashes an address: the map's keys are distinct pointers already.
#[derive(Default)]
struct AddressHasher(u64);

impl Hasher for AddressHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = (self.0 << 8) | u64::from(byte);
        }
    }

    fn write_usize(&mut self, address: usize) {
        // Fibonacci hashing: spreads the low bits that alignment leaves at zero.
        self.0 = (address as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

impl Sender {
    /// Sends until the pipe has nothing more (`Pending`, with the pump's waker registered
    /// where it waits), or until the application completed the pipe and all of it went out.
    fn poll_drive(
        &mut self,
        cx: &mut Context<'_>,
        progress: Option<&SendProgress>,
    ) -> Poll<io::Result<()>> {
        loop {
            let read = if let Some(send) = self.send.as_mut() {
                let (n, back) = match Pin::new(send).poll(cx) {
                    Poll::Ready(done) => done,
                    Poll::Pending => {
                        if progress.is_some_and(SendProgress::is_cut) {
                            return Poll::Ready(Err(io::Error::new(
                                io::ErrorKind::TimedOut,
                                "the peer took the output below the minimum send rate",
                            )));
                        }
                        return Poll::Pending;
                    }
                };
                self.send = None;
                self.slices = back;
                let n = n?;
                if n == 0 {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::WriteZero,
                        "socket took no bytes",
                    )));
                }
                self.sent += n;
                if self.sent < self.len {
                    skip_sent(&mut self.slices, n);
                    self.start_send();
                    continue;
                }
                if let Some(progress) = progress {
                    progress.drained();
                }
                // All of the read went out: release it and look for more under one lock
                // (unless it was the last, or the task's budget is spent).
                self.slices.clear();
                let len = self.len;
                if self.completed || coop::poll_proceed(cx).is_pending() {
                    self.outbound.advance_to(len, len)?;
                    return match self.completed {
                        true => Poll::Ready(Ok(())),
                        false => Poll::Pending,
                    };
                }
                std::task::ready!(self.outbound.advance_and_poll_read(len, len, cx)?)?
            } else {
                let mut read = self.outbound.read();
                std::task::ready!(Pin::new(&mut read).poll(cx))?
            };
            let (len, completed) = (read.len(), read.is_completed());
            self.slices.extend(read.segments());
            (self.len, self.sent, self.completed) = (len, 0, completed);
            if len == 0 {
                self.slices.clear();
                self.outbound.advance_to(0, 0)?;
                if completed {
                    return Poll::Ready(Ok(()));
                }
                continue;
            }
            if let Some(progress) = progress {
                progress.waiting();
            }
            self.start_send();
        }
    }

    fn start_send(&mut self) {
        self.send = Some(self.stream.writev(std::mem::take(&mut self.slices)));
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
