//! `LocalExec`: hyper's executor on the current reactor.

use std::future::Future;

/// Spawns hyper's background futures (HTTP/2 streams, connection tasks) with
/// [`spawn_local`](ringhop_runtime::spawn_local) on the current reactor, so they may be
/// `!Send` and never leave the connection's thread.
#[derive(Clone, Copy, Debug, Default)]
pub struct LocalExec;

impl<F> hyper::rt::Executor<F> for LocalExec
where
    F: Future + 'static,
{
    fn execute(&self, future: F) {
        drop(ringhop_runtime::spawn_local(future));
    }
}
