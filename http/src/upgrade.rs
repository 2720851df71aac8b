//! Protocol upgrades (`101 Switching Protocols`: WebSocket, h2c, ...): the connection leaves
//! HTTP and goes on, on the same reactor and over the same pipes, as whatever the handler
//! runs on it. Counted for both servers.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};

use ringhop_pipes::DuplexPipe;

/// What runs on an upgraded connection (see [`Response::upgrade`](crate::Response::upgrade)).
pub(crate) type OnUpgrade = Box<dyn FnOnce(DuplexPipe) -> Pin<Box<dyn Future<Output = ()>>>>;

/// Upgraded connections of the process, both servers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UpgradeStats {
    /// Connections switched to another protocol so far.
    pub upgraded: u64,
    /// Upgraded connections still open.
    pub open: u64,
}

static UPGRADED: AtomicU64 = AtomicU64::new(0);
static OPEN: AtomicU64 = AtomicU64::new(0);

/// The current [`UpgradeStats`].
pub fn upgrade_stats() -> UpgradeStats {
    UpgradeStats {
        upgraded: UPGRADED.load(Ordering::Relaxed),
        open: OPEN.load(Ordering::Relaxed),
    }
}

/// Counts an upgrade (hyper's: its open count is taken apart, see [`opened_open`]).
pub(crate) fn counted() {
    UPGRADED.fetch_add(1, Ordering::Relaxed);
}

/// Counts an upgraded connection open until [`closed`].
pub(crate) fn opened_open() {
    OPEN.fetch_add(1, Ordering::Relaxed);
}

/// The end of an upgrade counted by [`opened_open`].
pub(crate) fn closed() {
    OPEN.fetch_sub(1, Ordering::Relaxed);
}

/// An upgraded connection, counted open until this is dropped.
#[derive(Debug)]
pub(crate) struct Upgraded(());

impl Upgraded {
    pub(crate) fn start() -> Upgraded {
        counted();
        opened_open();
        Upgraded(())
    }
}

impl Drop for Upgraded {
    fn drop(&mut self) {
        closed();
    }
}
