//! The `Send + Sync` face of a reactor: what other threads (and wakers) hold to reach it.

use std::fmt;
use std::future::Future;
use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::Ordering;

use crate::blocking::BlockingPool;
use crate::context;
use crate::driver::{Driver, RingFlags};
use crate::scheduler::park::Notify;
use crate::scheduler::remote::RemoteQueue;
use crate::stats::{Counters, ReactorStats};
use crate::sys::eventfd::EventFd;
use crate::task::{Header, JoinHandle, TaskRef};
use std::sync::{Arc, OnceLock};

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
}

/// A handle to one reactor: post closures to it, spawn tasks on it, ask whether you are on it.
///
/// `Send + Sync + Clone`: hand it to any thread. Obtained from [`current`](crate::current) on a
/// reactor or from [`Runtime::handles`](crate::Runtime::handles).
#[derive(Clone)]
pub struct ReactorHandle {
    pub(crate) shared: Arc<Shared>,
}

impl ReactorHandle {
    /// The reactor's index in its runtime, `0..reactors`.
    pub fn index(&self) -> usize {
        self.shared.index
    }

    /// `true` when the calling thread is this reactor's thread (the OnReactorThread analog).
    pub fn is_current(&self) -> bool {
        context::with(|reactor| Arc::ptr_eq(&reactor.shared, &self.shared)).unwrap_or(false)
    }

    /// Runs `f` on the reactor thread, never inline, even when called from that very thread
    /// (the ScheduleOnReactor analog). Closures from one producer run in the order posted.
    ///
    /// Returns an error when the reactor has shut down; `f` is then dropped without running.
    ///
    /// ```
    /// let rt = ringhop_runtime::Runtime::builder().reactors(1).build().unwrap();
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// rt.handles()[0].post(move || tx.send(ringhop_runtime::current().index()).unwrap()).unwrap();
    /// assert_eq!(rx.recv().unwrap(), 0);
    /// ```
    pub fn post(&self, f: impl FnOnce() + Send + 'static) -> io::Result<()> {
        let closed = || {
            io::Error::new(
                io::ErrorKind::NotConnected,
                format!("reactor {} has shut down", self.shared.index),
            )
        };
        if self.shared.remote.is_closed() {
            return Err(closed());
        }
        // A refused push drops `f` (the reactor closed while we pushed).
        self.shared
            .remote
            .push(Remote::Post(Box::new(f)))
            .map_err(|_| closed())
    }

    /// Spawns a local task on this reactor: `factory` runs there and builds the future, which
    /// therefore may be `!Send`. Works from any thread.
    ///
    /// If the reactor has shut down, the returned handle resolves to
    /// [`JoinError::Cancelled`](crate::JoinError::Cancelled).
    pub fn spawn<F, Fut>(&self, factory: F) -> JoinHandle<Fut::Output>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future + 'static,
        Fut::Output: Send + 'static,
    {
        let header = Arc::new(Header::new(self.shared.clone()));
        let handle = JoinHandle::new(header.clone());
        let pending = PendingSpawn {
            header: Some(header),
            factory: Some(factory),
        };
        // On refusal the closure is dropped here, and PendingSpawn's Drop cancels the task.
        let _ = self.post(move || pending.start());
        handle
    }

    /// The driver this reactor runs: [`Driver::IoUring`] or [`Driver::Epoll`].
    pub fn driver(&self) -> Driver {
        self.shared.driver
    }

    /// The setup flags the kernel granted this reactor's ring (all `false` under epoll).
    pub fn ring_flags(&self) -> RingFlags {
        *self
            .shared
            .ring_flags
            .get()
            .unwrap_or(&RingFlags::default())
    }

    /// A snapshot of this reactor's counters.
    pub fn stats(&self) -> ReactorStats {
        self.shared.counters.snapshot()
    }
}

impl fmt::Debug for ReactorHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReactorHandle")
            .field("index", &self.shared.index)
            .finish()
    }
}

/// A spawn travelling to its reactor; if it never gets there, its task ends as cancelled.
struct PendingSpawn<T, F> {
    header: Option<Arc<Header<T>>>,
    factory: Option<F>,
}

impl<T: 'static, F, Fut> PendingSpawn<T, F>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = T> + 'static,
{
    fn start(mut self) {
        let (Some(header), Some(factory)) = (self.header.take(), self.factory.take()) else {
            return;
        };
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(factory)) {
            Ok(future) => {
                let reactor = context::expect("ReactorHandle::spawn");
                reactor
                    .executor
                    .insert(header, future, &reactor.shared.counters);
            }
            Err(payload) => header.finish_unstarted(Err(crate::JoinError::Panicked(payload))),
        }
    }
}

impl<T, F> Drop for PendingSpawn<T, F> {
    fn drop(&mut self) {
        if let Some(header) = self.header.take() {
            header.finish_unstarted(Err(crate::JoinError::Cancelled));
        }
    }
}
