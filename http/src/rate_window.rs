//! The minimum request body data rate's measure, shared by the native server's bodies and
//! hyper's ([`crate::hyper::RequestBody`]): windows of the grace period over the time body
//! reads waited, as the send side measures its windows over wall time.

use std::time::Duration;

use crate::config::MinDataRate;

/// Windows of waiting time, each `grace` long: at the end of one, the bytes that came in it
/// must pay for it at the rate, and the next opens. Not one average from the body's start:
/// with that, a burst at first (a megabyte the socket buffers took at once) paid for a
/// stall of hours afterwards (1 MiB at 240 B/s is 73 minutes).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct RateWindow {
    /// Waiting time and bytes when the current window opened.
    opened_at: Duration,
    bytes_then: u64,
}

/// A window ended with fewer bytes than the rate asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BelowRate;

impl RateWindow {
    /// Given the body's total waiting time and bytes so far: closes every window that has
    /// ended, and says how much longer the current one runs (how long a read starting now
    /// may wait before the rate is judged). A window the bytes paid for opens the next at
    /// `waited`; one they did not is `BelowRate`.
    pub(crate) fn check(
        &mut self,
        rate: &MinDataRate,
        waited: Duration,
        bytes: u64,
    ) -> Result<Duration, BelowRate> {
        let length = waited.saturating_sub(self.opened_at);
        if length < rate.grace {
            return Ok(rate.grace - length);
        }
        // The window ended (waits end at its end, or a little later when a read brought
        // bytes just after: they count in it, and so does the longer length).
        if rate.is_too_slow(bytes.saturating_sub(self.bytes_then), length) {
            return Err(BelowRate);
        }
        *self = RateWindow {
            opened_at: waited,
            bytes_then: bytes,
        };
        Ok(rate.grace)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn a_burst_pays_for_its_own_window_only() {
        let rate = MinDataRate::default(); // 240 B/s after 5 s
        let mut window = RateWindow::default();
        // A megabyte in the first second of waiting, then nothing.
        assert_eq!(window.check(&rate, SECOND, 1 << 20), Ok(4 * SECOND));
        // The first window ends at 5 s, paid for: the next one opens.
        assert_eq!(window.check(&rate, 5 * SECOND, 1 << 20), Ok(5 * SECOND));
        // Nothing came in the second window: below the rate at its end, at 10 s of waiting.
        // (One running average from the start allowed 4,369 s.)
        assert_eq!(window.check(&rate, 10 * SECOND, 1 << 20), Err(BelowRate));
    }

    #[test]
    fn a_steady_peer_at_the_rate_is_never_cut() {
        let rate = MinDataRate::default();
        let mut window = RateWindow::default();
        for second in 1..=600u64 {
            assert!(window
                .check(&rate, Duration::from_secs(second), second * 240)
                .is_ok());
        }
    }

    #[test]
    fn the_window_judges_its_own_bytes_over_its_own_length() {
        let rate = MinDataRate::default();
        let mut window = RateWindow::default();
        // 1,300 B by the end of the first window: paid (1,200 needed).
        assert!(window.check(&rate, 5 * SECOND, 1300).is_ok());
        // A read that brought 1,100 B more returned 1 s after the second window's end: 6 s
        // of window, 1,440 B needed.
        assert_eq!(window.check(&rate, 11 * SECOND, 2400), Err(BelowRate));
    }
}
