//! A reactor's state shared with every thread: its remote queue (and the eventfd behind its
//! park word), counters, driver facts and the runtime's blocking pool. `ReactorHandle` is its
//! public face; tasks reach it only as a [`Schedule`].

use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};

use super::blocking_pool::BlockingPool;
use super::park::Notify;
use super::remote::RemoteQueue;
use crate::driver::{Driver, RingFlags};
use crate::stats::Counters;
use crate::sys::eventfd::EventFd;
use crate::task::{JoinHandle, Schedule, TaskRef};

/// Work handed to a reactor from another thread.
pub(crate) enum Remote {
    /// A task woken off its reactor.
    Wake(Arc<dyn TaskRef>),
    /// A closure to run on the reactor ([`ReactorHandle::post`]).
    Post(Box<dyn FnOnce() + Send>),
}

/// The reactor's wake-up signal: its eventfd, written by producers only when the reactor is
/// parked (the driver watches it under io_uring and epoll alike).
pub(crate) struct Unparker {
    eventfd: EventFd,
    counters: Arc<Counters>,
}

impl Unparker {
    fn new(counters: Arc<Counters>) -> io::Result<Self> {
        Ok(Unparker {
            eventfd: EventFd::new()?,
            counters,
        })
    }

    pub(crate) fn fd(&self) -> RawFd {
        self.eventfd.fd()
    }
}

impl Notify for Unparker {
    fn notify(&self) {
        self.eventfd.write();
        self.counters.eventfd_writes.fetch_add(1, Ordering::Relaxed);
    }
}

/// State of one reactor shared with every thread.
pub(crate) struct Shared {
    pub(crate) index: usize,
    pub(crate) remote: RemoteQueue<Remote, Unparker>,
    pub(crate) counters: Arc<Counters>,
    /// Set once by the reactor thread after its ring is built.
    pub(crate) ring_flags: OnceLock<RingFlags>,
    /// The driver this reactor runs (resolved before it starts).
    pub(crate) driver: Driver,
    /// The runtime's blocking pool, shared by all its reactors.
    pub(crate) blocking: Arc<BlockingPool>,
}

impl Shared {
    pub(crate) fn new(
        index: usize,
        driver: Driver,
        blocking: Arc<BlockingPool>,
    ) -> io::Result<Self> {
        let counters = Arc::new(Counters::default());
        Ok(Shared {
            index,
            driver,
            blocking,
            remote: RemoteQueue::new(Unparker::new(counters.clone())?),
            counters,
            ring_flags: OnceLock::new(),
        })
    }

    /// Runs `f` on the reactor (see `ReactorHandle::post`); `Err` once it shut down.
    pub(crate) fn post(&self, f: impl FnOnce() + Send + 'static) -> io::Result<()> {
        let closed = || {
            io::Error::new(
                io::ErrorKind::NotConnected,
                format!("reactor {} has shut down", self.index),
            )
        };
        if self.remote.is_closed() {
            return Err(closed());
        }
        // A refused push drops `f` (the reactor closed while we pushed).
        self.remote
            .push(Remote::Post(Box::new(f)))
            .map_err(|_| closed())
    }
}

impl Schedule for Shared {
    fn schedule_remote(&self, task: Arc<dyn TaskRef>) {
        // Refused only when the reactor shut down, which cancelled the task already.
        let _ = self.remote.push(Remote::Wake(task));
    }
}

impl<T: 'static> JoinHandle<T> {
    /// Test hook: delivers a wake of this task to `reactor`'s queue as if the task belonged
    /// there, to prove that [`ReactorStats::off_reactor_polls`](crate::ReactorStats) catches
    /// a hop. Not for applications.
    #[doc(hidden)]
    pub fn debug_misroute_wake(&self, reactor: &crate::ReactorHandle) {
        let _ = reactor
            .shared
            .remote
            .push(Remote::Wake(self.header.clone()));
    }
}
