//! Handler futures in pooled memory.
//!
//! An `async fn` reserves room for everything it may await, so a connection's state machine
//! would carry its router's largest handler future for its whole life — idle keep-alive
//! connections included (about 2 KB with the test app's routes). Instead the handler's
//! future runs in a slot taken from a per-thread pool for the length of the request and
//! given back after: the connection keeps a pointer, an idle connection keeps nothing, and
//! once warm a request allocates nothing (the pool holds as many slots as requests ran at
//! once). Kestrel pools its per-request state the same way.

use std::alloc::{self, Layout};
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::ptr::NonNull;
use std::task::{Context, Poll};

/// Slots kept per layout; beyond it a returned slot is freed.
const POOL_CAPACITY: usize = 1024;

/// Free slots of one layout.
struct Free {
    layout: Layout,
    slots: Vec<NonNull<u8>>,
}

struct Pool(Vec<Free>);

impl Drop for Pool {
    fn drop(&mut self) {
        // The slot in front of the pool too: a thread's first `take` goes through the pool,
        // so the pool's destructor is registered before anything reaches `LAST`.
        if let Ok(Some((slot, layout))) = LAST.try_with(Cell::take) {
            // SAFETY: a slot in `LAST` was allocated with its layout and is not in use.
            unsafe { alloc::dealloc(slot.as_ptr(), layout) };
        }
        for free in &self.0 {
            for slot in &free.slots {
                // SAFETY: every pooled slot was allocated with this layout and is not in use.
                unsafe { alloc::dealloc(slot.as_ptr(), free.layout) };
            }
        }
    }
}

thread_local! {
    static POOL: RefCell<Pool> = const { RefCell::new(Pool(Vec::new())) };
    /// The slot given back last, in front of the pool: a connection's request gives its slot
    /// back and the next request takes it, through a `Cell` with no destructor (the cheapest
    /// thread-local there is) instead of the pool's `RefCell` and lists.
    static LAST: Cell<Option<(NonNull<u8>, Layout)>> = const { Cell::new(None) };
}

fn take(layout: Layout) -> NonNull<u8> {
    if let Some((slot, kept)) = LAST.get() {
        if kept == layout {
            LAST.set(None);
            return slot;
        }
    }
    let pooled = POOL
        .try_with(|pool| {
            let mut pool = pool.borrow_mut();
            pool.0
                .iter_mut()
                .find(|free| free.layout == layout)
                .and_then(|free| free.slots.pop())
        })
        .ok()
        .flatten();
    pooled.unwrap_or_else(|| {
        // SAFETY: callers pass the layout of a future type, never zero-sized (see `Pooled::new`).
        let ptr = unsafe { alloc::alloc(layout) };
        NonNull::new(ptr).unwrap_or_else(|| alloc::handle_alloc_error(layout))
    })
}

fn give(slot: NonNull<u8>, layout: Layout) {
    if LAST.get().is_none() {
        LAST.set(Some((slot, layout)));
        return;
    }
    let kept = POOL
        .try_with(|pool| {
            let mut pool = pool.borrow_mut();
            let index = match pool.0.iter().position(|free| free.layout == layout) {
                Some(index) => index,
                None => {
                    pool.0.push(Free {
                        layout,
                        slots: Vec::new(),
                    });
                    pool.0.len() - 1
                }
            };
            let free = &mut pool.0[index];
            if free.slots.len() < POOL_CAPACITY {
                free.slots.push(slot);
                true
            } else {
                false
            }
        })
        .unwrap_or(false);
    if !kept {
        // SAFETY: the slot was allocated with `layout` and its future was dropped.
        unsafe { alloc::dealloc(slot.as_ptr(), layout) };
    }
}

/// A future moved into a pooled slot; the slot goes back to the pool when this is dropped.
pub(crate) struct Pooled<F: Future> {
    /// Points at a live `F` in a slot of `Layout::new::<F>()` (dangling, and still valid,
    /// for a zero-sized `F`).
    ptr: NonNull<F>,
}

impl<F: Future> Pooled<F> {
    pub(crate) fn new(future: F) -> Pooled<F> {
        let layout = Layout::new::<F>();
        let ptr = if layout.size() == 0 {
            NonNull::dangling()
        } else {
            take(layout).cast::<F>()
        };
        // SAFETY: the slot is valid for writes of `Layout::new::<F>()` and unused (for a
        // zero-sized `F`, a dangling aligned pointer is valid for the write).
        unsafe { ptr.as_ptr().write(future) };
        Pooled { ptr }
    }
}

impl<F: Future> Future for Pooled<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        // SAFETY: `Pooled` is never moved out of its pin by this code, and the future it
        // points to lives in its own heap slot, which never moves while `Pooled` lives.
        let this = unsafe { self.get_unchecked_mut() };
        // SAFETY: `ptr` points at a live `F` (written in `new`, dropped only in `drop`) in
        // a slot that does not move.
        unsafe { Pin::new_unchecked(this.ptr.as_mut()) }.poll(cx)
    }
}

impl<F: Future> Drop for Pooled<F> {
    fn drop(&mut self) {
        /// Gives the slot back even if dropping the future panics.
        struct Give(NonNull<u8>, Layout);
        impl Drop for Give {
            fn drop(&mut self) {
                if self.1.size() > 0 {
                    give(self.0, self.1);
                }
            }
        }
        let _give = Give(self.ptr.cast(), Layout::new::<F>());
        // SAFETY: `ptr` points at a live `F` that nothing else drops; after this it is
        // never used again (the slot goes back to the pool).
        unsafe { std::ptr::drop_in_place(self.ptr.as_ptr()) };
    }
}

#[cfg(test)]
mod tests {
    use super::Pooled;
    use std::cell::Cell;
    use std::rc::Rc;

    struct CountsDrop(Rc<Cell<u32>>, [u8; 512]);

    impl Drop for CountsDrop {
        fn drop(&mut self) {
            self.0.set(self.0.get() + 1);
        }
    }

    fn poll_once<F: std::future::Future>(f: std::pin::Pin<&mut F>) -> std::task::Poll<F::Output> {
        f.poll(&mut std::task::Context::from_waker(std::task::Waker::noop()))
    }

    #[test]
    fn runs_the_future_drops_it_once_and_reuses_the_slot() {
        let drops = Rc::new(Cell::new(0));
        let mut first_slot = None;
        for round in 0..3u32 {
            let guard = CountsDrop(drops.clone(), [round as u8; 512]);
            let mut pooled = Box::pin(Pooled::new(async move {
                let guard = guard;
                u32::from(guard.1[0]) + 1
            }));
            let slot = pooled.ptr.as_ptr() as usize;
            assert_eq!(*first_slot.get_or_insert(slot), slot, "the slot is reused");
            assert_eq!(
                poll_once(pooled.as_mut()),
                std::task::Poll::Ready(round + 1)
            );
            drop(pooled);
            assert_eq!(drops.get(), round + 1);
        }
        // Dropped before completion: the future is dropped too.
        let guard = CountsDrop(drops.clone(), [0; 512]);
        let pooled = Pooled::new(async move {
            let _guard = guard;
            std::future::pending::<()>().await;
        });
        drop(pooled);
        assert_eq!(drops.get(), 4);
    }
}
