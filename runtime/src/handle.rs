//! The `Send + Sync` face of a reactor: what other threads (and wakers) hold to reach it.

use std::fmt;
use std::future::Future;
use std::io;
use std::sync::Arc;

use crate::driver::{Driver, RingFlags};
use crate::scheduler::{self, Shared};
use crate::stats::ReactorStats;
use crate::task::{Header, JoinHandle};

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
        scheduler::with_current(|local| Arc::ptr_eq(&local.shared, &self.shared)).unwrap_or(false)
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
        self.shared.post(f)
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
                let local = scheduler::current("ReactorHandle::spawn");
                local
                    .executor
                    .insert(header, future, &local.shared.counters);
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
