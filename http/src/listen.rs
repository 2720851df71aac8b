//! What the native [`Server`](crate::Server) and the hyper server share: bind on every
//! reactor first (SO_REUSEPORT), then accept on each reactor until shutdown, hand every
//! connection to the protocol as a `DuplexPipe`, and drain.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use ringhop_pipes::{DuplexPipe, TransportOptions};
use ringhop_runtime::{self as rt, net::TcpListener, time, Runtime};

use crate::shutdown;

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

/// This reactor's accept loop: every accepted connection becomes a pipe served by a local
/// task running `serve(pipe)`. On shutdown it stops accepting and waits up to
/// `drain_timeout` for the connections still open.
pub(crate) async fn accept_until_shutdown<S, Fut>(
    addr: SocketAddr,
    drain_timeout: Duration,
    transport: TransportOptions,
    mut serve: S,
) -> io::Result<()>
where
    S: FnMut(DuplexPipe) -> Fut,
    Fut: Future<Output = ()> + 'static,
{
    shutdown::reset();
    let listener = match LISTENER.with(|slot| slot.borrow_mut().take()) {
        Some(listener) => listener,
        None => TcpListener::bind(addr)?,
    };
    let live = Rc::new(Cell::new(0usize));
    while let Some(accepted) = shutdown::unless_shutdown(listener.accept()).await {
        let stream = match accepted {
            Ok(stream) => stream,
            Err(err) => {
                // EMFILE, ECONNABORTED, ...: keep serving the others.
                eprintln!("ringhop-http: accept failed: {err}");
                time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let Ok(pipe) = ringhop_pipes::connect_with(stream, transport.clone()) else {
            continue;
        };
        let connection = serve(pipe);
        let live = live.clone();
        live.set(live.get() + 1);
        drop(rt::spawn_local(async move {
            connection.await;
            live.set(live.get() - 1);
        }));
    }
    drop(listener);
    // Drain: in-flight requests finish, idle connections close themselves.
    let deadline = time::Instant::now() + drain_timeout;
    while live.get() > 0 && time::Instant::now() < deadline {
        time::sleep(Duration::from_millis(5)).await;
    }
    Ok(())
}
