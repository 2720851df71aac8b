//! ringhop: a thread-per-core io_uring runtime.
//!
//! This facade only re-exports the member crates; see each for details.

pub use ringhop_pipes as pipes;
pub use ringhop_runtime as rt;
