//! The minimum request body data rate for hyper services: [`RequestBody`] wraps hyper's
//! `Incoming` and runs the rate's clock only while a body read waits, as the native server
//! does — time the service spends elsewhere is not the client's.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use hyper::body::{Body, Frame, Incoming, SizeHint};
use ringhop_runtime::time::{self, Sleep};

use super::BoxError;
use crate::config::MinDataRate;
use crate::rate_window::RateWindow;
use crate::stats::{self, Event};

/// A request body type [`HyperServer`](super::HyperServer) can hand a service: hyper's own
/// [`Incoming`] (no request body rate: the service sees exactly what hyper gives), or
/// [`RequestBody`] (the minimum rate of [`Config::min_request_body_data_rate`](crate::Config)
/// enforced).
pub trait FromIncoming: Body + Sized + 'static {
    /// Wraps the body hyper received, under `rate` when the type enforces one.
    fn from_incoming(body: Incoming, rate: Option<MinDataRate>) -> Self;
}

impl FromIncoming for Incoming {
    fn from_incoming(body: Incoming, _rate: Option<MinDataRate>) -> Self {
        body
    }
}

impl FromIncoming for RequestBody {
    fn from_incoming(body: Incoming, rate: Option<MinDataRate>) -> Self {
        RequestBody {
            inner: body,
            clock: rate.map(RateClock::new),
        }
    }
}

/// A request body under the minimum data rate (Kestrel's `MinRequestBodyDataRate`): the time
/// reads of this body wait is cut into windows of the grace period, and the bytes that come
/// in each window must pay for it at the rate (a burst at first does not pay for a stall
/// later); below it the next frame is an error (the connection then closes) and the
/// server's `closed_body_rate` counter goes up.
///
/// `Send + Sync`, so it fits axum (`Router` takes any body) and tower middleware.
///
/// ```no_run
/// use std::convert::Infallible;
/// use hyper::{Request, Response};
/// use ringhop_http::hyper::{HyperServer, RequestBody};
///
/// // An echo: the upload streams back as it arrives. A client trickling its body below
/// // 240 B/s (after 5 s) ends the response with an error, and the connection closes.
/// async fn echo(req: Request<RequestBody>) -> Result<Response<RequestBody>, Infallible> {
///     Ok(Response::new(req.into_body()))
/// }
///
/// let runtime = ringhop_runtime::Runtime::builder().build()?;
/// HyperServer::bind("127.0.0.1:8080".parse().unwrap())
///     .run(&runtime, || hyper::service::service_fn(echo))?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct RequestBody {
    inner: Incoming,
    clock: Option<RateClock>,
}

impl RequestBody {
    /// The hyper body inside (bypassing the rate rule from here on).
    pub fn into_inner(self) -> Incoming {
        self.inner
    }
}

impl fmt::Debug for RequestBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestBody")
            .field("rate", &self.clock.as_ref().map(|clock| clock.rate))
            .finish()
    }
}

/// The rate's measure: bytes received and time spent waiting for them.
struct RateClock {
    rate: MinDataRate,
    received: u64,
    waited: Duration,
    /// When the current wait began (a read is pending).
    waiting_since: Option<Instant>,
    /// Wakes the waiting read when the rate would be missed; armed only while one waits.
    alarm: Option<Pin<Box<Sleep>>>,
    /// The rate was missed: every later read fails too.
    tripped: bool,
    window: RateWindow,
}

impl RateClock {
    fn new(rate: MinDataRate) -> RateClock {
        RateClock {
            rate,
            received: 0,
            waited: Duration::ZERO,
            waiting_since: None,
            alarm: None,
            tripped: false,
            window: RateWindow::default(),
        }
    }

    /// A read returned: the wait (if any) ends.
    fn stop(&mut self, bytes: usize) {
        if let Some(since) = self.waiting_since.take() {
            self.waited += since.elapsed();
        }
        self.alarm = None;
        self.received += bytes as u64;
    }

    /// A read waits: `true` once the rate is missed; otherwise the alarm is armed for the
    /// moment it would be.
    fn wait(&mut self, cx: &mut Context<'_>) -> bool {
        let now = Instant::now();
        let since = *self.waiting_since.get_or_insert(now);
        let waited_now = now.saturating_duration_since(since);
        let Ok(rest) = self
            .window
            .check(&self.rate, self.waited + waited_now, self.received)
        else {
            return true;
        };
        // The current window's end, counted from the wait's start: the same instant at
        // every poll of this wait until the window rolls over (the alarm is then kept).
        let missed_at = time::deadline_after(
            since,
            waited_now
                .saturating_add(rest)
                .saturating_add(Duration::from_millis(1)),
        );
        let alarm = match &mut self.alarm {
            Some(alarm) if alarm.deadline() == missed_at => alarm,
            slot => slot.insert(Box::pin(time::sleep_until(missed_at))),
        };
        // Ready means the rate is missed by now; the next poll (which this wake causes)
        // finds it so through the arithmetic above.
        if alarm.as_mut().poll(cx).is_ready() {
            self.alarm = None;
            cx.waker().wake_by_ref();
        }
        false
    }
}

/// The error a body below the minimum rate yields.
#[derive(Debug)]
struct TooSlow(MinDataRate);

impl fmt::Display for TooSlow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the request body came below the minimum rate of {} bytes/s",
            self.0.bytes_per_second
        )
    }
}

impl std::error::Error for TooSlow {}

impl Body for RequestBody {
    type Data = <Incoming as Body>::Data;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        if let Some(clock) = &this.clock {
            if clock.tripped {
                return Poll::Ready(Some(Err(Box::new(TooSlow(clock.rate)))));
            }
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                if let Some(clock) = &mut this.clock {
                    let bytes = match &frame {
                        Some(Ok(frame)) => frame.data_ref().map_or(0, |data| data.len()),
                        _ => 0,
                    };
                    clock.stop(bytes);
                }
                Poll::Ready(frame.map(|result| result.map_err(Into::into)))
            }
            Poll::Pending => {
                let Some(clock) = &mut this.clock else {
                    return Poll::Pending;
                };
                if !clock.wait(cx) {
                    return Poll::Pending;
                }
                clock.tripped = true;
                clock.alarm = None;
                stats::count(Event::BodyRate);
                Poll::Ready(Some(Err(Box::new(TooSlow(clock.rate)))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
