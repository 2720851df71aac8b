//! Scheduling: the local executor and its run queues, the remote queue other threads push
//! to, the park word that decides when they must wake the reactor, and the loop turn that
//! ties them to the driver.
//!
//! Dependencies point down: `turn` uses `remote`, which uses `park`; the executor knows tasks
//! only through `task::TaskRef`.

pub(crate) mod executor;
pub(crate) mod park;
pub(crate) mod remote;
pub(crate) mod turn;

pub(crate) use executor::Executor;
