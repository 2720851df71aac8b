//! The side tokio runtime (feature `tokio-compat`): crates written for tokio (`tokio::spawn`,
//! `tokio::time`, `tokio::net`, and what is built on them: tower-http's timeouts, reqwest,
//! sqlx) work inside ringhop tasks.
//!
//! A small multi-thread tokio runtime, owned by the ringhop [`Runtime`](crate::Runtime),
//! runs tokio's timer and I/O drivers and the tasks given to `tokio::spawn`. Every reactor
//! thread enters its context for its whole life, so tokio's "is there a runtime?" checks
//! pass there. What runs where:
//! - ringhop tasks (connections, handlers, everything `spawn_local`ed) are polled only on
//!   their reactor, as always ([`ReactorStats::off_reactor_polls`](crate::ReactorStats)
//!   counts any exception and stays 0);
//! - `tokio::spawn`ed tasks run on the side runtime's threads;
//! - a tokio timer or socket awaited by a ringhop task is driven by the side runtime; when
//!   it is ready, tokio wakes the ringhop task, which goes through its reactor's remote
//!   queue (a cross-thread wake) and is polled on the reactor.
//!
//! The side runtime's threads block SIGINT and SIGTERM, as the blocking pool's do, so the
//! HTTP servers' signal watcher gets them (and `tokio::signal` does not).

use std::io;

/// Builds the side runtime with `threads` workers.
pub(crate) fn side_runtime(threads: usize, name: &str) -> io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .thread_name(format!("{name}-tokio"))
        // As the blocking pool's: a shutdown signal is never taken by a thread that cannot
        // act on it (the server's watcher reads them from a signalfd).
        .on_thread_start(crate::scheduler::blocking_pool::block_shutdown_signals)
        .enable_all()
        .build()
        .map_err(|err| io::Error::new(err.kind(), format!("tokio-compat: {err}")))
}
