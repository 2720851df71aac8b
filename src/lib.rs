#![doc = include_str!("../README.md")]
//!
//! This facade only re-exports the member crates: [`rt`] (reactors, tasks, TCP, timers) and
//! [`pipes`] (duplex byte pipes and socket pumps).

pub use ringhop_http as http;
pub use ringhop_pipes as pipes;
pub use ringhop_runtime as rt;
