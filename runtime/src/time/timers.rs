//! The reactor's timers: a min-heap of deadlines over a slab of entries.
//!
//! No syscall per timer: the reactor derives its single wait timeout from
//! [`Timers::next_deadline`]. A cancelled timer leaves a stale heap entry behind, recognised
//! by its generation and skipped when it surfaces.

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
}

impl Timers {
    pub(crate) fn new() -> Self {
        Timers {
            heap: BinaryHeap::new(),
            entries: Slab::new(),
            next_generation: 0,
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
        if matches!(self.entries.get(timer.key), Some(e) if e.generation == timer.generation) {
            self.entries.remove(timer.key);
        }
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
            if let Some(entry) = self.entries.get_mut(key) {
                if entry.generation == generation {
                    entry.fired = true;
                    due.extend(entry.waker.take());
                }
            }
        }
    }
}
