//! What the native [`Server`](crate::Server) and the hyper server share: bind on every
//! reactor first (SO_REUSEPORT), then accept on each reactor until shutdown, hand every
//! connection to the protocol as a `DuplexPipe`, and drain.

use std::cell::{Cell, RefCell};
use std::future::{poll_fn, Future};
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use ringhop_pipes::{CloseObserver, ConnInfo, DuplexPipe, Middleware, Transport, TransportOptions};
use ringhop_runtime::{self as rt, net::TcpListener, time, Runtime};

use crate::shutdown;
use crate::stats::{self, Event};
use crate::throttle::Throttle;

thread_local! {
    /// The listener a reactor bound in the first phase, taken by its accept loop.
    static LISTENER: RefCell<Option<TcpListener>> = const { RefCell::new(None) };
}

/// Binds `addr` on every reactor (so a bad address fails before anything is served), calls
/// `on_listening`, installs the SIGINT/SIGTERM watcher if asked, and runs `per_reactor` on
/// every reactor until all of them return.
pub(crate) fn run_on_every_reactor<F, Fut>(
    runtime: &Runtime,
    addr: SocketAddr,
    handle_signals: bool,
    on_listening: Option<Box<dyn FnOnce(SocketAddr) + Send>>,
    per_reactor: F,
) -> io::Result<()>
where
    F: Fn() -> Fut + Send + Clone + 'static,
    Fut: Future<Output = io::Result<()>> + 'static,
{
    for bound in runtime.run(move || async move {
        let listener = TcpListener::bind(addr)?;
        LISTENER.with(|slot| *slot.borrow_mut() = Some(listener));
        io::Result::Ok(())
    }) {
        bound?;
    }
    if let Some(callback) = on_listening {
        callback(addr);
    }
    let signals = if handle_signals {
        Some(crate::signals::Watcher::install(runtime)?)
    } else {
        None
    };
    let results = runtime.run(per_reactor);
    drop(signals);
    results.into_iter().collect()
}

/// The connections this reactor's accept loop started and that are still open, and the
/// accept loop's waker while it waits for one of them to end (at its share of the cap).
#[derive(Default)]
struct Live {
    count: Cell<usize>,
    waiter: Cell<Option<Waker>>,
}

impl Live {
    fn opened(&self) {
        self.count.set(self.count.get() + 1);
        stats::connection_opened();
    }

    /// Ready once fewer than `cap` connections are open.
    fn poll_below(&self, cap: usize, cx: &mut Context<'_>) -> Poll<()> {
        if self.count.get() < cap {
            return Poll::Ready(());
        }
        self.waiter.set(Some(cx.waker().clone()));
        Poll::Pending
    }
}

/// A connection counts until its socket closes (its pumps ended), not only while a protocol
/// runs on it: the pumps may still send a last response to a slow reader, linger for the
/// peer's FIN, or carry a protocol that hyper handed to another task after an upgrade. So
/// the cap bounds open sockets (fds), as it says.
impl CloseObserver for Live {
    fn closed(&self) {
        self.count.set(self.count.get() - 1);
        stats::connection_closed();
        if let Some(waker) = self.waiter.take() {
            waker.wake();
        }
    }
}

thread_local! {
    static ACCEPT_FAILED: Throttle = const { Throttle::new() };
}

/// The default cap on connections: the fd limit, less a tenth and 32 for everything else
/// (listeners, rings, eventfds, files).
pub(crate) fn default_max_connections() -> usize {
    // SAFETY: all-zero is a valid rlimit for the kernel to fill.
    let mut limit: libc::rlimit = unsafe { std::mem::zeroed() };
    // SAFETY: a valid out pointer.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return 1024;
    }
    let fds = usize::try_from(limit.rlim_cur)
        .unwrap_or(usize::MAX)
        .min(1 << 24);
    fds.saturating_sub(fds / 10 + 32).max(1)
}

/// Whether an `accept` error is about the connection being accepted rather than the
/// listener or the process: the peer reset or aborted it while it waited in the backlog, or
/// (Linux passes a new socket's pending network errors on from `accept`, and accept(2) says
/// to retry them like `EAGAIN`) `ENETDOWN`, `EPROTO`, `ENOPROTOOPT`, `EHOSTDOWN`, `ENONET`,
/// `EHOSTUNREACH`, `EOPNOTSUPP`, `ENETUNREACH`; `EPERM` is a firewall rule refusing it. The
/// next connection is unaffected, so these must not pause accepting: a peer that keeps
/// aborting would otherwise hold everyone else in the backlog.
fn is_connection_error(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
            | io::ErrorKind::Interrupted
    ) || matches!(
        err.raw_os_error(),
        Some(
            libc::ENETDOWN
                | libc::EPROTO
                | libc::ENOPROTOOPT
                | libc::EHOSTDOWN
                | libc::ENONET
                | libc::EHOSTUNREACH
                | libc::EOPNOTSUPP
                | libc::ENETUNREACH
                | libc::EPERM
        )
    )
}

/// This reactor's accept loop: every accepted connection becomes a pipe served by a local
/// task running `serve(pipe)`. At most `cap` connections are open at once: at the cap it
/// stops accepting (the kernel's backlog holds newcomers) until one closes. Accept errors
/// about the server's resources (EMFILE, ENFILE, ...) back off, from 10 ms doubling up to
/// 1 s, and are logged at most once a second with a count; errors of one connection
/// ([`is_connection_error`]) are skipped at once. On shutdown it stops accepting and waits up to
/// `drain_timeout` for the connections still open.
pub(crate) async fn accept_until_shutdown<M, S, Fut>(
    addr: SocketAddr,
    drain_timeout: Duration,
    transport: TransportOptions,
    cap: usize,
    middleware: M,
    serve: S,
) -> io::Result<()>
where
    M: Middleware,
    S: Fn(DuplexPipe, ConnInfo) -> Fut + 'static,
    Fut: Future<Output = ()> + 'static,
{
    let chain = Rc::new((middleware, serve));
    shutdown::reset();
    let listener = match LISTENER.with(|slot| slot.borrow_mut().take()) {
        Some(listener) => listener,
        None => TcpListener::bind(addr)?,
    };
    let local_addr = Some(addr).filter(|a| !a.ip().is_unspecified() && a.port() != 0);
    let live = Rc::new(Live::default());
    let mut backoff = Duration::ZERO;
    loop {
        if live.count.get() >= cap {
            // At the cap: newcomers wait in the kernel's backlog, not in our memory (no
            // accept is in flight: each is started only below the cap).
            stats::count(Event::AtCap);
            let below = poll_fn(|cx| live.poll_below(cap, cx));
            if shutdown::unless_shutdown(below).await.is_none() {
                break;
            }
        }
        // One connection at a time: a multishot accept would take in a whole burst before
        // the loop sees the cap.
        let Some(accepted) = shutdown::unless_shutdown(listener.accept_one()).await else {
            break;
        };
        let stream = match accepted {
            Ok(stream) => stream,
            // A connection that failed before it was accepted: the next one is unaffected.
            Err(err) if is_connection_error(&err) => continue,
            Err(err) => {
                // EMFILE, ENFILE, ENOBUFS, ...: keep serving the others, retry later.
                backoff = (backoff * 2).clamp(Duration::from_millis(10), Duration::from_secs(1));
                if let Some(failures) = ACCEPT_FAILED.with(|t| t.ready(time::now())) {
                    tracing::warn!(
                        %err,
                        failures,
                        retry_in_ms = backoff.as_millis() as u64,
                        "ringhop-http: accept failed"
                    );
                }
                time::sleep(backoff).await;
                continue;
            }
        };
        backoff = Duration::ZERO;
        // The peer's address costs a syscall; the local one only when the listener's
        // address does not already say it (a wildcard address or port).
        let info = ConnInfo {
            peer_addr: stream.peer_addr().ok(),
            local_addr: local_addr.or_else(|| stream.local_addr().ok()),
            tls: None,
        };
        // Counted until the socket closes, however the task ends (also if a middleware or
        // an upgraded protocol panics: the reactor drops the task, and its pipes with it).
        let observer: Rc<dyn CloseObserver> = live.clone();
        let Ok(Transport { pipe, .. }) =
            Transport::start_observed(stream, transport.clone(), observer)
        else {
            continue;
        };
        live.opened();
        let chain = chain.clone();
        // Boxed into the task (and unboxed at its start): what the task captures stays in
        // its state for the connection's life, the pipe and the info only until they are
        // handed on.
        let start = Box::new((pipe, info));
        drop(rt::spawn_local(async move {
            let (middleware, serve) = &*chain;
            let (pipe, mut info) = *start;
            // The middleware (a TLS handshake) runs in the connection's task, not in the
            // accept loop: a slow client holds only its own connection.
            if let Ok(pipe) = middleware.call(pipe, &mut info).await {
                serve(pipe, info).await;
            }
        }));
    }
    drop(listener);
    // Drain: in-flight requests finish, idle connections close themselves.
    let deadline = time::deadline_after(time::Instant::now(), drain_timeout);
    while live.count.get() > 0 && time::Instant::now() < deadline {
        time::sleep(Duration::from_millis(5)).await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_of_one_connection_are_not_backed_off() {
        for errno in [
            libc::ECONNABORTED,
            libc::ECONNRESET,
            libc::EPROTO,
            libc::ENETUNREACH,
        ] {
            assert!(
                is_connection_error(&io::Error::from_raw_os_error(errno)),
                "{errno}"
            );
        }
        // The process or the system is out of something: accepting again at once would spin.
        for errno in [
            libc::EMFILE,
            libc::ENFILE,
            libc::ENOBUFS,
            libc::ENOMEM,
            libc::EBADF,
        ] {
            assert!(
                !is_connection_error(&io::Error::from_raw_os_error(errno)),
                "{errno}"
            );
        }
    }
}
