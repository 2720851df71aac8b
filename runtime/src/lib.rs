//! ringhop's runtime: one io_uring reactor per core, a local executor whose tasks are polled
//! only on their own reactor, and an eventfd-signalled remote queue for everything that
//! crosses threads.
//!
//! - [`Runtime`] starts the reactors (pinned, one per core by default); [`run`] starts the same
//!   future on each of them, the shape of a thread-per-core server.
//! - [`spawn_local`] spawns a `!Send` task on the current reactor; [`JoinHandle`] awaits it.
//!   [`spawn_blocking`] runs blocking work on the runtime's thread pool and wakes the awaiting
//!   task on its reactor.
//! - [`current`] returns the current reactor's [`ReactorHandle`], which any thread may use to
//!   [`post`](ReactorHandle::post) closures or [`spawn`](ReactorHandle::spawn) tasks there.
//! - [`net`] has TCP with owned buffers, [`time`] has sleeps and timeouts.
//!
//! A waker is `Send + Sync`: woken on its reactor it pushes onto the local run queue, woken
//! elsewhere onto the reactor's remote queue, and writes the reactor's eventfd only when the
//! reactor is parked. A running reactor costs remote producers no syscall.
//!
//! ```
//! use ringhop_runtime as rt;
//! let runtime = rt::Runtime::builder().reactors(2).build()?;
//! let outputs = runtime.run(|| async {
//!     let index = rt::current().index();
//!     rt::spawn_local(async move { index * 10 }).await
//! });
//! assert_eq!(outputs, vec![0, 10]);
//! # Ok::<(), std::io::Error>(())
//! ```

#![deny(missing_docs)]
#![warn(clippy::undocumented_unsafe_blocks)]

mod buf;
pub mod coop;
mod current;
mod driver;
mod handle;
pub mod net;
mod ops;
mod reactor;
mod runtime;
mod scheduler;
mod slab;
mod stats;
mod sync;
mod sys;
mod task;
pub mod time;
#[cfg(feature = "tokio-compat")]
mod tokio_compat;

pub use buf::{IoBuf, IoBufMut};
pub use driver::{CompletionHook, Driver, RingFlags};
pub use handle::ReactorHandle;
pub use runtime::{run, Builder, Runtime};
pub use scheduler::blocking::spawn_blocking;
pub use scheduler::{before_submit, hand_off, spawn_local, BeforeSubmit};
pub use stats::ReactorStats;
pub use task::{yield_now, JoinError, JoinHandle, TryJoin, YieldNow};

/// The handle of the reactor running the calling thread.
///
/// # Panics
///
/// Off a reactor thread; use [`try_current`] to ask instead.
pub fn current() -> ReactorHandle {
    try_current().expect("ringhop::rt::current() must be called on a ringhop reactor thread")
}

/// I/O operations the current reactor's kernel still owes a completion (0 off a reactor):
/// for leak checks, it returns to its starting value once connections are gone.
pub fn ops_in_flight() -> usize {
    driver::with_current(driver::IoDriver::ops_in_flight).unwrap_or(0)
}

/// The handle of the reactor running the calling thread, or `None` off any reactor.
pub fn try_current() -> Option<ReactorHandle> {
    scheduler::with_current(|local| ReactorHandle {
        shared: local.shared.clone(),
    })
}
