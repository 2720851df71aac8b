//! loom models of ringhop's cross-thread hand-offs: the reactor turn with its park word and
//! remote queue (including shutdown), task scheduling and join, the blocking pool, and the
//! pipe's reader/writer wake protocol.
//!
//! The modules under test are the runtime's own source files, included by path, so the models
//! check the code that ships, not a copy. They are written against `crate::sync`, which under
//! `--cfg loom` is loom's instrumented std. Run:
//!
//! ```text
//! RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=3 cargo test -p loom-tests --release
//! ```
//!
//! Without `--cfg loom` this crate is empty.
#![cfg(loom)]
#![allow(dead_code)]

#[path = "../../runtime/src/sync.rs"]
mod sync;

// The runtime's scheduler hand-offs, included from its source: the park word, the remote
// queue, and the reactor turn the reactor thread runs. They name each other as `super::…`,
// which is the crate root here.
#[path = "../../runtime/src/scheduler/park.rs"]
mod park;

#[path = "../../runtime/src/scheduler/remote.rs"]
mod remote;

#[path = "../../runtime/src/scheduler/turn.rs"]
mod turn;

/// The scheduler modules under the names the runtime gives them (for the models).
#[cfg(test)]
mod scheduler {
    pub(crate) use crate::{park, remote, turn};
}

/// The runtime's task module (header and its waker, state word, join cell), from its source.
/// (Not every re-export is used by the models.)
#[allow(unused_imports)]
#[path = "../../runtime/src/task/mod.rs"]
mod task;

/// The runtime's blocking pool (threads, queue, condition variable), from its source.
#[path = "../../runtime/src/scheduler/blocking_pool.rs"]
mod blocking_pool;

/// The pipe's state machine, included from the pipes crate.
#[path = "../../pipes/src/state.rs"]
mod pipe_state;

#[cfg(test)]
mod models;
