//! `ReactorTimer`: hyper's timer on ringhop's timers.
//!
//! hyper requires its sleeps to be `Send + Sync`, but a ringhop timer is owned by its
//! reactor (`!Send`). The sleep hyper gets holds only thread-safe parts: the deadline, an
//! `Arc` with a fired flag and a waker slot, and the `JoinHandle` (which is `Send + Sync`
//! for a `()` output) of a local task that waits on the reactor's timer and then fires the
//! flag. Dropping the sleep aborts that task, which removes the reactor timer. hyper polls
//! its sleeps inside the connection task, i.e. on the reactor; if one were polled elsewhere
//! it would still be correct, only woken through the reactor's remote queue.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use ringhop_runtime::{self as rt, time, JoinHandle};

/// hyper's timer, backed by the current reactor's timers.
#[derive(Clone, Copy, Debug, Default)]
pub struct ReactorTimer;

impl hyper::rt::Timer for ReactorTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        self.sleep_until(Instant::now() + duration)
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(ReactorSleep::new(deadline))
    }

    fn now(&self) -> Instant {
        Instant::now()
    }
}

#[derive(Default)]
struct Fired {
    done: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

struct ReactorSleep {
    fired: Arc<Fired>,
    task: JoinHandle<()>,
}

impl ReactorSleep {
    fn new(deadline: Instant) -> ReactorSleep {
        let fired = Arc::new(Fired::default());
        let task_fired = fired.clone();
        let task = rt::spawn_local(async move {
            time::sleep_until(deadline).await;
            task_fired.done.store(true, Ordering::Release);
            let waker = task_fired
                .waker
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take();
            if let Some(waker) = waker {
                waker.wake();
            }
        });
        ReactorSleep { fired, task }
    }
}

impl Future for ReactorSleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.fired.done.load(Ordering::Acquire) {
            return Poll::Ready(());
        }
        *self.fired.waker.lock().unwrap_or_else(|e| e.into_inner()) = Some(cx.waker().clone());
        // Re-check after registering: the timer task may have fired in between.
        if self.fired.done.load(Ordering::Acquire) {
            return Poll::Ready(());
        }
        Poll::Pending
    }
}

impl Drop for ReactorSleep {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl hyper::rt::Sleep for ReactorSleep {}
