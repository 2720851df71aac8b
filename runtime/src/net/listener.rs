//! `TcpListener`: SO_REUSEPORT listening socket with a multishot accept in flight, or
//! single-shot accepts for a server that takes connections only below a limit.

use std::cell::RefCell;
use std::fmt;
use std::future::{poll_fn, Future};
use std::io;
use std::mem::ManuallyDrop;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use futures_core::Stream;
use futures_task::ArcWake;

use super::stream::TcpStream;
use crate::driver::{MultiOp, Op, SharedFd};
use crate::ops::{Accept, AcceptMulti};
use crate::sys::addr::{self, socket_addr, tcp_socket};
use crate::sys::{self, syscall};

/// Listen backlog for [`TcpListener::bind`].
const BACKLOG: i32 = 1024;

/// A TCP listening socket owned by one reactor.
///
/// `bind` sets `SO_REUSEADDR` and `SO_REUSEPORT`, so every reactor of a thread-per-core server
/// binds the same address and the kernel spreads connections across them. One multishot accept
/// stays in flight; accepted sockets get `TCP_NODELAY`.
///
/// ```no_run
/// use ringhop_runtime::{self as rt, net::TcpListener};
/// rt::run(|| async {
///     let listener = TcpListener::bind("127.0.0.1:7000".parse().unwrap()).unwrap();
///     while let Ok(stream) = listener.accept().await {
///         rt::spawn_local(async move {
///             let (res, buf) = stream.recv(Vec::with_capacity(4096)).await;
///             if res.is_ok() {
///                 let _ = stream.send_all(buf).await;
///             }
///         });
///     }
/// })
/// .unwrap();
/// ```
pub struct TcpListener {
    /// Taken out only by `Drop`, which closes it at once.
    fd: ManuallyDrop<SharedFd>,
    local_addr: SocketAddr,
    accept: RefCell<Option<MultiOp<AcceptMulti>>>,
    /// The single-shot accept of [`accept_one`](Self::accept_one), while one is in flight.
    one: RefCell<Option<Op<Accept>>>,
    /// The tasks waiting in `accept`: the multishot op keeps one waker, this fan-out, so
    /// that every task sharing the listener is woken, not only the last to poll.
    waiters: Arc<AcceptWaiters>,
}

/// Wakers of the tasks waiting for a connection; a wake wakes them all (each polls again:
/// one takes the connection, the others wait anew).
#[derive(Default)]
struct AcceptWaiters(Mutex<Vec<Waker>>);

impl AcceptWaiters {
    fn register(&self, waker: &Waker) {
        let mut waiters = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if !waiters.iter().any(|w| w.will_wake(waker)) {
            waiters.push(waker.clone());
        }
    }
}

impl ArcWake for AcceptWaiters {
    fn wake_by_ref(this: &Arc<Self>) {
        let waiters = std::mem::take(&mut *this.0.lock().unwrap_or_else(|e| e.into_inner()));
        for waker in waiters {
            waker.wake();
        }
    }
}

impl TcpListener {
    /// Binds and listens on `addr` (port 0 picks a free port; see [`TcpListener::local_addr`]).
    pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
        let fd = SharedFd::new(tcp_socket(&addr)?);
        sys::set_int_option(fd.raw(), libc::SOL_SOCKET, libc::SO_REUSEADDR, 1)?;
        sys::set_int_option(fd.raw(), libc::SOL_SOCKET, libc::SO_REUSEPORT, 1)?;
        let raw = addr::to_raw(addr);
        syscall!(bind(fd.raw(), raw.as_ptr(), raw.len))?;
        syscall!(listen(fd.raw(), BACKLOG))?;
        let local_addr = socket_addr(fd.raw(), false)?;
        Ok(TcpListener {
            fd: ManuallyDrop::new(fd),
            local_addr,
            accept: RefCell::new(None),
            one: RefCell::new(None),
            waiters: Arc::default(),
        })
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local_addr)
    }

    /// Waits for the next connection.
    pub fn accept(&self) -> impl Future<Output = io::Result<TcpStream>> + '_ {
        poll_fn(move |cx| self.poll_accept(cx))
    }

    /// Polls for the next connection; re-arms the multishot accept when the kernel ended it.
    pub fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<TcpStream>> {
        let mut accept = self.accept.borrow_mut();
        // The same waker at every poll (one `Arc`): the op keeps it without a clone.
        let fan_out = futures_task::waker_ref(&self.waiters);
        loop {
            let op = accept.get_or_insert_with(|| MultiOp::new(AcceptMulti::new(&self.fd)));
            match op.poll_next(&mut Context::from_waker(&fan_out)) {
                Poll::Pending => {
                    self.waiters.register(cx.waker());
                    return Poll::Pending;
                }
                Poll::Ready(None) => *accept = None,
                // The end of a multishot stopped by `accept_one`: the next poll re-arms.
                Poll::Ready(Some(completion)) if completion.result == -libc::ECANCELED => {}
                Poll::Ready(Some(completion)) => {
                    let fd = match completion.into_io() {
                        Ok(fd) => fd as i32,
                        Err(err) => return Poll::Ready(Err(err)),
                    };
                    return Poll::Ready(Ok(accepted(fd)));
                }
            }
        }
    }

    /// Waits for the next connection, accepting it with a single-shot accept: nothing is
    /// taken from the listen backlog until this is polled. A server with a connection limit
    /// calls it only below the limit, so at the limit it holds no connection beyond it and
    /// newcomers wait in the backlog. ([`accept`](Self::accept)'s multishot op lets the
    /// kernel accept a burst as fast as it arrives, before a cancel can take effect.)
    ///
    /// A multishot accept still running is stopped first, and the connections it took are
    /// returned before any new one.
    pub fn accept_one(&self) -> impl Future<Output = io::Result<TcpStream>> + '_ {
        poll_fn(move |cx| self.poll_accept_one(cx))
    }

    /// Polls [`accept_one`](Self::accept_one).
    pub fn poll_accept_one(&self, cx: &mut Context<'_>) -> Poll<io::Result<TcpStream>> {
        let fan_out = futures_task::waker_ref(&self.waiters);
        let mut fan_out_cx = Context::from_waker(&fan_out);
        {
            let mut multishot = self.accept.borrow_mut();
            while let Some(op) = multishot.as_mut() {
                op.cancel();
                match op.poll_next(&mut fan_out_cx) {
                    // Its end (the cancel's) is on its way.
                    Poll::Pending => {
                        self.waiters.register(cx.waker());
                        return Poll::Pending;
                    }
                    Poll::Ready(Some(completion)) if completion.result == -libc::ECANCELED => {}
                    Poll::Ready(Some(completion)) => {
                        return Poll::Ready(completion.into_io().map(|fd| accepted(fd as i32)));
                    }
                    Poll::Ready(None) => *multishot = None,
                }
            }
        }
        let mut one = self.one.borrow_mut();
        let op = one.get_or_insert_with(|| crate::ops::accept(&self.fd));
        match Pin::new(op).poll(&mut fan_out_cx) {
            Poll::Pending => {
                self.waiters.register(cx.waker());
                Poll::Pending
            }
            Poll::Ready(result) => {
                *one = None;
                Poll::Ready(result.map(accepted))
            }
        }
    }

    /// The accepted connections as a `Stream` (of `io::Result<TcpStream>`; never ends).
    pub fn incoming(&self) -> Incoming<'_> {
        Incoming { listener: self }
    }
}

impl fmt::Debug for TcpListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpListener")
            .field("fd", &self.fd.raw())
            .field("local_addr", &self.local_addr)
            .finish()
    }
}

impl Drop for TcpListener {
    fn drop(&mut self) {
        // Stop the accepts first: they hold the socket too.
        let multishot = self.accept.get_mut().take().is_some();
        let single = self.one.get_mut().take().is_some();
        let accepted = multishot || single;
        // SAFETY: `fd` is taken exactly once, here, and never used again.
        let fd = unsafe { ManuallyDrop::take(&mut self.fd) };
        if accepted {
            // An accept SQE may still wait in the submission queue, naming this fd number:
            // the close goes through the driver, after it.
            drop(fd);
            return;
        }
        // Never accepted (a listener bound to learn a port, say): close now, not with the
        // reactor's next submission. Until it closes, a listening socket keeps completing
        // handshakes into its backlog, and a client the kernel routed there (another
        // listener shares the port through SO_REUSEPORT) would get a reset.
        if let Ok(raw) = fd.try_unwrap() {
            sys::close(raw);
        }
    }
}

/// A socket the kernel accepted, as a stream.
fn accepted(fd: i32) -> TcpStream {
    let stream = TcpStream::from_fd(SharedFd::accepted(fd));
    // Latency matters more than segment count for request/response traffic.
    let _ = stream.set_nodelay(true);
    stream
}

/// Stream of accepted connections, from [`TcpListener::incoming`].
#[derive(Debug)]
pub struct Incoming<'a> {
    listener: &'a TcpListener,
}

impl Stream for Incoming<'_> {
    type Item = io::Result<TcpStream>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.listener.poll_accept(cx).map(Some)
    }
}
