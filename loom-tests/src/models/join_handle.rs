//! Model 3: completion, abort and JoinHandle drop/poll race without leaking or double-dropping
//! the output, and a JoinHandle waiting on another thread is always woken. It runs the
//! runtime's own `task/join_cell.rs` and `task/state.rs` (also what `spawn_blocking`'s pool
//! thread completes).
//!
//! Mutations it catches: any change to the join cell's protocol that drops the output twice
//! or never (the drop counter), yields two results for abort vs completion, or lets a
//! completion go unseen by a `JoinHandle` waiting on another thread (a hang, which loom
//! reports as a deadlock).

use std::future::poll_fn;

use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;

use crate::task::join_cell::{JoinCell, JoinError};

/// An output that counts its drops.
struct Output(Arc<AtomicUsize>);

impl Drop for Output {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::AcqRel);
    }
}

fn setup() -> (Arc<JoinCell<Output>>, Arc<AtomicUsize>) {
    let cell = Arc::new(JoinCell::new());
    // The task was polled once and is idle.
    cell.state.transition_to_running();
    (cell, Arc::new(AtomicUsize::new(0)))
}

#[test]
fn completion_racing_join_handle_drop_drops_output_once() {
    loom::model(|| {
        let (cell, drops) = setup();
        let joiner = {
            let cell = cell.clone();
            thread::spawn(move || cell.drop_join_handle())
        };
        cell.complete(Ok(Output(drops.clone())));
        joiner.join().unwrap();
        assert_eq!(drops.load(Ordering::Acquire), 1);
    });
}

#[test]
fn join_handle_on_another_thread_gets_output_once() {
    loom::model(|| {
        let (cell, drops) = setup();
        let joiner = {
            let cell = cell.clone();
            thread::spawn(move || {
                let result = loom::future::block_on(poll_fn(|cx| cell.poll_join(cx)));
                assert!(result.is_ok());
                drop(result);
                cell.drop_join_handle();
            })
        };
        cell.complete(Ok(Output(drops.clone())));
        joiner.join().unwrap();
        assert_eq!(drops.load(Ordering::Acquire), 1);
    });
}

#[test]
fn abort_racing_completion_yields_one_result() {
    loom::model(|| {
        let (cell, drops) = setup();
        let aborter = {
            let cell = cell.clone();
            thread::spawn(move || {
                // The abort's enqueue is modelled by the reactor re-checking the state below.
                let _ = cell.state.transition_to_aborted();
                let result = loom::future::block_on(poll_fn(|cx| cell.poll_join(cx)));
                let cancelled = matches!(result, Err(JoinError::Cancelled));
                drop(result);
                cell.drop_join_handle();
                cancelled
            })
        };
        // The reactor polls once more: an abort seen here drops the future instead.
        let snapshot = cell.state.transition_to_running();
        if snapshot.is_aborted() {
            cell.complete(Err(JoinError::Cancelled));
        } else {
            cell.complete(Ok(Output(drops.clone())));
        }
        let cancelled = aborter.join().unwrap();
        let expected_drops = if cancelled { 0 } else { 1 };
        assert_eq!(drops.load(Ordering::Acquire), expected_drops);
        assert_eq!(cancelled, snapshot.is_aborted());
    });
}
