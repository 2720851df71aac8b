//! The runtime's task state and join cell, included from its source.

#[path = "../../runtime/src/task/state.rs"]
pub(crate) mod state;

#[path = "../../runtime/src/task/join_cell.rs"]
pub(crate) mod join_cell;
