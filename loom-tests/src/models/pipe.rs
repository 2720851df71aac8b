//! Models of the pipe's wake protocol, used exactly as `pipes/src/{reader,writer}.rs` use it:
//! one mutex around the state, wakers taken out under it and woken after releasing it.
//!
//! Mutations they catch: any change to `pipes/src/state.rs` that loses the reader's or a
//! paused writer's wake (deadlock), or resumes a paused writer more than once.

use std::future::poll_fn;

use loom::sync::{Arc, Mutex};
use loom::thread;

use crate::pipe_state::{FlushReady, ReadReady, State};

fn shared(pause: u64, resume: u64) -> Arc<Mutex<State>> {
    Arc::new(Mutex::new(State::new(pause, resume)))
}

/// Reader waiting on one thread, writer flushing on another: the read always completes.
#[test]
fn reader_waiting_vs_writer_flushing_never_loses_the_wake() {
    loom::model(|| {
        let state = shared(0, 0);
        let writer = {
            let state = state.clone();
            thread::spawn(move || {
                let waker = state.lock().unwrap().commit(10);
                if let Some(waker) = waker {
                    waker.wake();
                }
            })
        };
        let ready = loom::future::block_on(poll_fn(|cx| state.lock().unwrap().poll_read(cx)));
        assert!(matches!(ready, ReadReady::Data { canceled: false }));
        assert_eq!(state.lock().unwrap().committed, 10);
        writer.join().unwrap();
    });
}

/// A writer paused at the threshold and a reader advancing in two steps: the flush resumes,
/// and the writer is woken exactly once.
#[test]
fn paused_writer_resumes_exactly_once() {
    loom::model(|| {
        let state = shared(100, 50);
        let wakes = Arc::new(loom::sync::atomic::AtomicUsize::new(0));
        let reader = {
            let (state, wakes) = (state.clone(), wakes.clone());
            thread::spawn(move || {
                loom::future::block_on(poll_fn(|cx| state.lock().unwrap().poll_read(cx)));
                for examined in [60, 100] {
                    let waker = state.lock().unwrap().advance(examined, examined);
                    if let Some(waker) = waker {
                        wakes.fetch_add(1, loom::sync::atomic::Ordering::Relaxed);
                        waker.wake();
                    }
                }
            })
        };
        let waker = state.lock().unwrap().commit(100);
        if let Some(waker) = waker {
            waker.wake();
        }
        let ready = loom::future::block_on(poll_fn(|cx| state.lock().unwrap().poll_flush(cx)));
        assert!(matches!(
            ready,
            FlushReady::Done {
                completed: false,
                canceled: false
            }
        ));
        reader.join().unwrap();
        assert!(wakes.load(loom::sync::atomic::Ordering::Relaxed) <= 1);
    });
}

/// A pending read raced by the writer completing and by a cancel from a third thread:
/// the read returns, and whichever it saw, nothing is lost for the next read.
#[test]
fn complete_and_cancel_racing_a_pending_read() {
    loom::model(|| {
        let state = shared(0, 0);
        let completer = {
            let state = state.clone();
            thread::spawn(move || {
                let waker = state.lock().unwrap().complete_writer(None);
                if let Some(waker) = waker {
                    waker.wake();
                }
            })
        };
        let canceler = {
            let state = state.clone();
            thread::spawn(move || {
                let waker = state.lock().unwrap().cancel_read();
                if let Some(waker) = waker {
                    waker.wake();
                }
            })
        };
        let first = loom::future::block_on(poll_fn(|cx| state.lock().unwrap().poll_read(cx)));
        completer.join().unwrap();
        canceler.join().unwrap();
        // After both, a second read sees whatever the first did not: it never waits.
        let second = state.lock().unwrap().try_read();
        match first {
            ReadReady::Data { canceled: true } => {
                assert!(matches!(second, Some(ReadReady::Data { canceled: false })));
            }
            ReadReady::Data { canceled: false } => assert!(second.is_some()),
            ReadReady::Error(_) => unreachable!("no error was given"),
        }
    });
}

/// The reader completing while a flush waits on backpressure: the flush returns completed.
#[test]
fn reader_completion_releases_a_paused_flush() {
    loom::model(|| {
        let state = shared(10, 5);
        let reader = {
            let state = state.clone();
            thread::spawn(move || {
                let waker = state.lock().unwrap().complete_reader(None);
                if let Some(waker) = waker {
                    waker.wake();
                }
            })
        };
        let _ = state.lock().unwrap().commit(10);
        let ready = loom::future::block_on(poll_fn(|cx| state.lock().unwrap().poll_flush(cx)));
        reader.join().unwrap();
        // The commit filled the pipe to its pause threshold, so the flush can only have
        // returned because the reader completed.
        assert!(matches!(
            ready,
            FlushReady::Done {
                completed: true,
                canceled: false
            }
        ));
    });
}
