//! `ReactorTimer`: hyper's timer on ringhop's timers.
//!
//! hyper requires its sleeps to be `Send + Sync`; ringhop's [`time::Sleep`] is, and arms a
//! timer on the reactor that first polls it, which for hyper is the connection's reactor.
//! No task per sleep: hyper arms one for every request head it reads (the header read
//! timeout), and spawning and aborting a task for each showed up in profiles.
//!
//! Time is the reactor's coarse clock (refreshed once per loop turn), not a clock read per
//! call: hyper asks for the time and a sleep for every request, and those reads were 4 % of
//! a request's user time. A sleep may then end up to one loop turn early, which the
//! timeouts hyper arms (seconds) cannot tell.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use ringhop_runtime::time;

/// hyper's timer, backed by the current reactor's timers.
#[derive(Clone, Copy, Debug, Default)]
pub struct ReactorTimer;

impl hyper::rt::Timer for ReactorTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        self.sleep_until(time::deadline_in(duration))
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(ReactorSleep(time::sleep_until(deadline)))
    }

    fn now(&self) -> Instant {
        time::now()
    }
}

struct ReactorSleep(time::Sleep);

impl Future for ReactorSleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.0).poll(cx)
    }
}

impl hyper::rt::Sleep for ReactorSleep {}
