//! Minimum data rates: how slowly a peer may take (or give) bytes before the connection is
//! cut — the defence against a client that stops reading, or reads a byte now and then,
//! while the server's answer waits for it.

use std::cell::Cell;
use std::time::{Duration, Instant};

use ringhop_runtime::net::TcpStream;

/// A minimum rate, averaged over windows of the grace period's length while bytes wait:
/// Kestrel's `MinDataRate` (its defaults, 240 B/s after 5 s, are `Default`).
///
/// Each window starts when bytes start waiting (or the previous window ends); once it is
/// `grace` long, the bytes moved in it must reach `bytes_per_second` × its length, else the
/// connection is cut. Windows, not one average from the start, so that the burst the
/// kernel's socket buffers absorb at first does not pay for hours of trickle afterwards.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MinDataRate {
    /// The slowest average accepted, in bytes per second.
    pub bytes_per_second: u64,
    /// How long any rate is accepted before the average counts.
    pub grace: Duration,
}

impl Default for MinDataRate {
    fn default() -> Self {
        MinDataRate {
            bytes_per_second: 240,
            grace: Duration::from_secs(5),
        }
    }
}

impl MinDataRate {
    /// Whether `bytes` moved in `elapsed` is too slow (never within the grace period).
    pub fn is_too_slow(&self, bytes: u64, elapsed: Duration) -> bool {
        elapsed >= self.grace
            && u128::from(bytes) * 1000 < u128::from(self.bytes_per_second) * elapsed.as_millis()
    }
}

thread_local! {
    static SEND_RATE_CUTS: Cell<u64> = const { Cell::new(0) };
}

/// Connections this reactor cut for taking its output below their minimum send rate.
pub fn send_rate_cuts() -> u64 {
    SEND_RATE_CUTS.with(Cell::get)
}

/// How fast the peer takes the output a send pump waits to send, for the watchdog.
///
/// Progress is what the peer's TCP acknowledged (`tcpi_bytes_acked`), not what our sends
/// handed to the kernel: the socket buffers take megabytes at once and then give the send
/// back only when half of them drained, which would make a fair reader look stalled.
/// Nothing here costs the send path a syscall: the send pump only flips `waiting`; the
/// watchdog reads the counter at its ticks, only for connections whose output waits.
pub(crate) struct SendProgress {
    rate: MinDataRate,
    /// Output is waiting to be sent (a send is in flight).
    waiting: Cell<bool>,
    /// The current window: when it started, and the peer's acknowledged bytes then.
    window: Cell<Option<(Instant, u64)>>,
    /// The rate was not met: the send pump must give up.
    cut: Cell<bool>,
}

impl SendProgress {
    pub(crate) fn new(rate: MinDataRate) -> Self {
        SendProgress {
            rate,
            waiting: Cell::new(false),
            window: Cell::new(None),
            cut: Cell::new(false),
        }
    }

    /// Output waits to be sent.
    pub(crate) fn waiting(&self) {
        self.waiting.set(true);
    }

    /// Everything was sent: the clock stops.
    pub(crate) fn drained(&self) {
        self.waiting.set(false);
        self.window.set(None);
    }

    /// The watchdog's check: opens a window when output waits; at the end of each window,
    /// cuts if the peer took too little of `stream`'s output in it, else opens the next.
    /// Returns `true` when it cut now: the caller wakes the send pump.
    pub(crate) fn check(&self, now: Instant, stream: &TcpStream) -> bool {
        if !self.waiting.get() {
            return false;
        }
        let Ok(acked) = stream.bytes_acked() else {
            return false;
        };
        let Some((since, acked_then)) = self.window.get() else {
            self.window.set(Some((now, acked)));
            return false;
        };
        let elapsed = now.saturating_duration_since(since);
        if elapsed < self.rate.grace {
            return false;
        }
        if self
            .rate
            .is_too_slow(acked.saturating_sub(acked_then), elapsed)
        {
            SEND_RATE_CUTS.with(|cuts| cuts.set(cuts.get() + 1));
            self.cut.set(true);
            true
        } else {
            self.window.set(Some((now, acked)));
            false
        }
    }

    /// The connection was cut: the send pump gives up.
    pub(crate) fn is_cut(&self) -> bool {
        self.cut.get()
    }
}

#[cfg(test)]
mod tests {
    use super::MinDataRate;
    use std::time::Duration;

    #[test]
    fn the_rate_counts_only_after_the_grace_period() {
        let rate = MinDataRate::default();
        assert!(!rate.is_too_slow(0, Duration::from_millis(4999)));
        assert!(rate.is_too_slow(0, Duration::from_secs(5)));
        // 100 B/s is too slow, 300 B/s is not.
        assert!(rate.is_too_slow(1000, Duration::from_secs(10)));
        assert!(!rate.is_too_slow(3000, Duration::from_secs(10)));
        assert!(!rate.is_too_slow(2400, Duration::from_secs(10)));
    }
}
