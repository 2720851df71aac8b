//! loom models of ringhop's cross-thread hand-offs: the reactor's park flag and remote
//! queue, task scheduling and join, and the pipe's reader/writer wake protocol.
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

#[path = "../../runtime/src/park.rs"]
mod park;

#[path = "../../runtime/src/remote.rs"]
mod remote;

mod task;

/// The pipe's state machine, included from the pipes crate.
#[path = "../../pipes/src/state.rs"]
mod pipe_state;

#[cfg(test)]
mod models;
