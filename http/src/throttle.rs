//! Rate-limited log lines: under a flood of the same event (accept failing at the fd
//! limit, say), one line a second per reactor, saying how many events it stands for.

use std::cell::Cell;
use std::time::Duration;

use ringhop_runtime::time;

/// A log line per event class and reactor at most once a second, with how many events it
/// stands for.
pub(crate) struct Throttle {
    last: Cell<Option<time::Instant>>,
    folded: Cell<u64>,
}

impl Throttle {
    pub(crate) const fn new() -> Throttle {
        Throttle {
            last: Cell::new(None),
            folded: Cell::new(0),
        }
    }

    /// `Some(events)` when a line may be written now (the events it reports, this one
    /// included); `None` when this event is folded into the next line.
    pub(crate) fn ready(&self, now: time::Instant) -> Option<u64> {
        let events = self.folded.get() + 1;
        let due = self
            .last
            .get()
            .is_none_or(|last| now.saturating_duration_since(last) >= Duration::from_secs(1));
        if due {
            self.last.set(Some(now));
            self.folded.set(0);
            Some(events)
        } else {
            self.folded.set(events);
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::Throttle;

    #[test]
    fn one_line_a_second_with_the_events_it_folds() {
        let throttle = Throttle::new();
        let start = std::time::Instant::now();
        assert_eq!(throttle.ready(start), Some(1));
        assert_eq!(throttle.ready(start + Duration::from_millis(10)), None);
        assert_eq!(throttle.ready(start + Duration::from_millis(500)), None);
        assert_eq!(throttle.ready(start + Duration::from_secs(1)), Some(3));
    }
}
