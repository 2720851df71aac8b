//! The reactor's timers: a min-heap of deadlines over a slab of entries.
//!
//! No syscall per timer: the reactor derives its single wait timeout from
//! [`Timers::next_deadline`]. A cancelled timer leaves a stale heap entry behind, recognised
//! by its generation and skipped when it surfaces; when stale entries outnumber live ones the
//! heap is compacted, so timers that are armed and cancelled per request (read timeouts that
//! rarely fire) cannot pile up for the length of their timeout.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::task::Waker;
use std::time::Instant;

use crate::slab::Slab;

struct Entry {
    generation: u64,
    waker: Option<Waker>,
    fired: bool,
}

/// Identifies a registered timer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TimerKey {
    key: usize,
    generation: u64,
}

pub(crate) struct Timers {
    heap: BinaryHeap<Reverse<(Instant, u64, usize)>>,
    entries: Slab<Entry>,
    next_generation: u64,
    /// Heap entries whose timer was removed before firing.
    stale: usize,
}

/// Below this many stale entries the heap is never compacted.
const COMPACT_MIN_STALE: usize = 1024;

impl Timers {
    pub(crate) fn new() -> Self {
        Timers {
            heap: BinaryHeap::new(),
            entries: Slab::new(),
            next_generation: 0,
            stale: 0,
        }
    }

    pub(crate) fn insert(&mut self, deadline: Instant, waker: Waker) -> TimerKey {
        let generation = self.next_generation;
        self.next_generation += 1;
        let key = self.entries.insert(Entry {
            generation,
            waker: Some(waker),
            fired: false,
        });
        // Ties fire in registration order: the generation breaks them.
        self.heap.push(Reverse((deadline, generation, key)));
        TimerKey { key, generation }
    }

    /// Refreshes the waker; returns `true` if the timer already fired.
    pub(crate) fn update(&mut self, timer: TimerKey, waker: &Waker) -> bool {
        match self.entries.get_mut(timer.key) {
            Some(entry) if entry.generation == timer.generation => {
                if entry.fired {
                    return true;
                }
                match &entry.waker {
                    Some(existing) if existing.will_wake(waker) => {}
                    _ => entry.waker = Some(waker.clone()),
                }
                false
            }
            _ => true,
        }
    }

    pub(crate) fn remove(&mut self, timer: TimerKey) {
        if let Some(entry) = self.entries.get(timer.key) {
            if entry.generation == timer.generation {
                if !entry.fired {
                    self.stale += 1;
                }
                self.entries.remove(timer.key);
            }
        }
        if self.stale >= COMPACT_MIN_STALE && self.stale > self.heap.len() / 2 {
            let entries = &self.entries;
            self.heap.retain(|Reverse((_, generation, key))| {
                matches!(entries.get(*key), Some(e) if e.generation == *generation && !e.fired)
            });
            self.stale = 0;
        }
    }

    /// Heap entries, live or stale (for tests).
    #[cfg(test)]
    fn heap_len(&self) -> usize {
        self.heap.len()
    }

    /// The earliest live deadline.
    pub(crate) fn next_deadline(&mut self) -> Option<Instant> {
        while let Some(Reverse((deadline, generation, key))) = self.heap.peek().copied() {
            match self.entries.get(key) {
                Some(entry) if entry.generation == generation && !entry.fired => {
                    return Some(deadline)
                }
                _ => {
                    self.heap.pop();
                    self.stale = self.stale.saturating_sub(1);
                }
            }
        }
        None
    }

    /// Marks every timer due at `now` as fired and returns their wakers, in deadline order.
    pub(crate) fn take_due(&mut self, now: Instant, due: &mut Vec<Waker>) {
        while let Some(Reverse((deadline, generation, key))) = self.heap.peek().copied() {
            if deadline > now {
                break;
            }
            self.heap.pop();
            match self.entries.get_mut(key) {
                Some(entry) if entry.generation == generation => {
                    entry.fired = true;
                    due.extend(entry.waker.take());
                }
                _ => self.stale = self.stale.saturating_sub(1),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::task::Waker;
    use std::time::{Duration, Instant};

    use super::Timers;

    #[test]
    fn cancelled_timers_do_not_pile_up_in_the_heap() {
        let mut timers = Timers::new();
        let far = Instant::now() + Duration::from_secs(120);
        let keep = timers.insert(far, Waker::noop().clone());
        for _ in 0..100_000 {
            let timer = timers.insert(far, Waker::noop().clone());
            timers.remove(timer);
        }
        assert!(
            timers.heap_len() <= 2 * 1024 + 2,
            "heap grew to {}",
            timers.heap_len()
        );
        assert_eq!(timers.next_deadline(), Some(far));
        timers.remove(keep);
        assert_eq!(timers.next_deadline(), None);
    }

    #[test]
    fn due_timers_fire_in_deadline_order() {
        let mut timers = Timers::new();
        let now = Instant::now();
        for ms in [30, 10, 20] {
            timers.insert(now + Duration::from_millis(ms), Waker::noop().clone());
        }
        let mut due = Vec::new();
        timers.take_due(now + Duration::from_millis(25), &mut due);
        assert_eq!(due.len(), 2);
        assert_eq!(
            timers.next_deadline(),
            Some(now + Duration::from_millis(30))
        );
    }
}
