//! Segment memory and the per-reactor segment pool.
//!
//! A [`Block`] is a fixed heap buffer shared (through `Arc`) by the pipe and by any I/O op
//! that is sending from it, so memory the kernel reads never goes back to the pool early. Its
//! bytes are accessed through raw pointers under the pipe's discipline: the writer only writes
//! past the committed end of the tail segment, the reader only reads committed bytes.

use std::cell::RefCell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crossbeam_queue::ArrayQueue;

/// Segments a pool keeps at most (per reactor): beyond this, released segments are freed.
const POOL_CAPACITY: usize = 4096;
/// Segments a pipe's own pool keeps (a pipe with a segment size other than the reactor's):
/// enough to reuse a segment from one write to the next, without keeping a burst's worth
/// for the pipe's life (nothing trims such a pool).
const PRIVATE_POOL_CAPACITY: usize = 2;
/// Of those, how many the owning thread keeps in its own stack, reused last-in first-out.
const HOT_CAPACITY: usize = 64;
/// Largest segment a single `buffer_mut` call gets rounded up to; larger requests get
/// exactly what they asked for.
pub const MAX_SEGMENT_SIZE: usize = 1 << 20;

static LIVE_BLOCKS: AtomicUsize = AtomicUsize::new(0);
/// Bytes of the live blocks.
static LIVE_BYTES: AtomicUsize = AtomicUsize::new(0);
/// The most live bytes seen since the allocator was last asked to give memory back.
static LIVE_BYTES_MARK: AtomicUsize = AtomicUsize::new(0);
/// How far live block memory must fall below its mark before the allocator is asked to
/// return what it kept (glibc keeps freed chunks in its per-thread arenas). 2 MiB: a single
/// 15 MB echo is enough (at 16 MiB it left RSS 11 MB up, now 6); the trim took 0.4 ms on the
/// reactor, at most once a second.
const TRIM_AFTER_FREEING: usize = 2 << 20;

/// Segment blocks allocated and not yet freed, process-wide (pooled ones included): with
/// [`SegmentPool::idle`], tests prove that closed connections leak no segment.
pub fn live_segments() -> usize {
    LIVE_BLOCKS.load(Ordering::Relaxed)
}

/// Once a burst's blocks are freed (at least 2 MiB below the peak since the last call that
/// acted), asks the allocator to return its free memory to the kernel: glibc keeps freed
/// chunks in its per-thread arenas, so a flood of big responses would otherwise leave the
/// process's RSS at its peak for good. Called by the watchdog's tick; costs one atomic load
/// when there is nothing to do.
pub(crate) fn release_freed_memory() {
    let live = LIVE_BYTES.load(Ordering::Relaxed);
    let mark = LIVE_BYTES_MARK.load(Ordering::Relaxed);
    if mark.saturating_sub(live) < TRIM_AFTER_FREEING {
        return;
    }
    LIVE_BYTES_MARK.store(live, Ordering::Relaxed);
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory of glibc's heaps; it is thread-safe.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// A heap buffer of fixed capacity.
pub(crate) struct Block {
    ptr: *mut u8,
    capacity: usize,
}

// SAFETY: a Block is plain heap memory. The pipe's protocol keeps concurrent accesses to
// disjoint byte ranges (writer: past the committed end; reader and sends: committed bytes),
// and hands ranges over under the pipe's mutex, which orders the accesses.
unsafe impl Send for Block {}
// SAFETY: as above.
unsafe impl Sync for Block {}

impl Block {
    fn new(capacity: usize) -> Block {
        let boxed: Box<[u8]> = vec![0u8; capacity].into_boxed_slice();
        let ptr = Box::into_raw(boxed).cast::<u8>();
        LIVE_BLOCKS.fetch_add(1, Ordering::Relaxed);
        let live = LIVE_BYTES.fetch_add(capacity, Ordering::Relaxed) + capacity;
        LIVE_BYTES_MARK.fetch_max(live, Ordering::Relaxed);
        Block { ptr, capacity }
    }

    /// Size in bytes.
    #[inline]
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// Start of the memory.
    #[inline]
    pub(crate) fn as_ptr(&self) -> *mut u8 {
        self.ptr
    }
}

impl Drop for Block {
    fn drop(&mut self) {
        LIVE_BLOCKS.fetch_sub(1, Ordering::Relaxed);
        LIVE_BYTES.fetch_sub(self.capacity, Ordering::Relaxed);
        // SAFETY: ptr/capacity came from Box::into_raw of a boxed slice of that length.
        drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(self.ptr, self.capacity)) });
    }
}

/// A pool of equally sized segments, shared by the pipes of one reactor.
///
/// Pipes created on a reactor use that reactor's pool ([`SegmentPool::current`]), so segments
/// are reused across requests and connections instead of freed. Safe to share across
/// threads: a pipe whose reader runs elsewhere returns segments here.
pub struct SegmentPool {
    segment_size: usize,
    free: ArrayQueue<Arc<Block>>,
}

impl std::fmt::Debug for SegmentPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SegmentPool")
            .field("segment_size", &self.segment_size)
            .field("idle", &self.free.len())
            .finish()
    }
}

impl SegmentPool {
    /// A pool of `segment_size`-byte segments.
    pub fn new(segment_size: usize) -> Arc<SegmentPool> {
        SegmentPool::with_capacity(segment_size, POOL_CAPACITY)
    }

    /// One pipe's own pool, for a segment size other than the reactor pool's: it keeps
    /// [`PRIVATE_POOL_CAPACITY`] segments at most.
    pub(crate) fn private(segment_size: usize) -> Arc<SegmentPool> {
        SegmentPool::with_capacity(segment_size, PRIVATE_POOL_CAPACITY)
    }

    fn with_capacity(segment_size: usize, capacity: usize) -> Arc<SegmentPool> {
        Arc::new(SegmentPool {
            segment_size: segment_size.max(64),
            free: ArrayQueue::new(capacity),
        })
    }

    /// This thread's pool of 4 KiB segments (one per reactor thread).
    pub fn current() -> Arc<SegmentPool> {
        LOCAL.with(|local| {
            let pool = local
                .pool
                .borrow_mut()
                .get_or_insert_with(|| SegmentPool::new(4096))
                .clone();
            local.pool_ptr.set(Arc::as_ptr(&pool));
            pool
        })
    }

    /// Runs `f` with this thread's stack of hot blocks when `self` is this thread's pool.
    fn with_hot<R>(&self, f: impl FnOnce(&mut Vec<Arc<Block>>) -> R) -> Option<R> {
        LOCAL
            .try_with(|local| {
                if !std::ptr::eq(local.pool_ptr.get(), self) {
                    return None;
                }
                local.hot.try_borrow_mut().ok().map(|mut hot| f(&mut hot))
            })
            .ok()
            .flatten()
    }

    /// Size of the pooled segments.
    pub fn segment_size(&self) -> usize {
        self.segment_size
    }

    /// Segments currently idle in the pool (asked on another thread than the pool's own,
    /// the owner's hot stack is not counted).
    pub fn idle(&self) -> usize {
        self.free.len() + self.with_hot(|hot| hot.len()).unwrap_or(0)
    }

    /// Frees the idle segments above `floor`: called once a second by the reactor's
    /// watchdog, so the memory a burst left pooled goes back to the allocator within a
    /// second, while a steady load keeps the `floor` it reuses most.
    pub(crate) fn decay(&self, floor: usize) {
        let hot = self
            .with_hot(|hot| {
                hot.truncate(floor);
                hot.len()
            })
            .unwrap_or(0);
        for _ in floor.saturating_sub(hot)..self.free.len() {
            drop(self.free.pop());
        }
    }

    /// A block of at least `min` bytes: pooled when `min` fits a pooled segment, otherwise a
    /// fresh block rounded up to a power of two (up to [`MAX_SEGMENT_SIZE`]).
    pub(crate) fn take(&self, min: usize) -> Arc<Block> {
        if min <= self.segment_size {
            // The block freed last on this thread first: it is still in cache.
            if let Some(block) = self.with_hot(Vec::pop).flatten() {
                return block;
            }
            return self
                .free
                .pop()
                .unwrap_or_else(|| Arc::new(Block::new(self.segment_size)));
        }
        let size = if min <= MAX_SEGMENT_SIZE {
            min.next_power_of_two()
        } else {
            min
        };
        Arc::new(Block::new(size))
    }

    /// Gives a block back; it is pooled only when nobody else (an in-flight send) holds it.
    pub(crate) fn give(&self, block: Arc<Block>) {
        if block.capacity == self.segment_size && Arc::strong_count(&block) == 1 {
            // On the pool's own thread, onto its hot stack (no atomic queue operation); what
            // does not fit, and blocks given back on other threads, go to the shared queue.
            let mut block = Some(block);
            self.with_hot(|hot| {
                if hot.len() < HOT_CAPACITY {
                    hot.extend(block.take());
                }
            });
            if let Some(block) = block {
                let _ = self.free.push(block);
            }
        }
    }
}

/// This thread's pool (see [`SegmentPool::current`]) and its stack of hot blocks.
struct Local {
    pool: RefCell<Option<Arc<SegmentPool>>>,
    /// `pool`'s address, compared without a borrow.
    pool_ptr: std::cell::Cell<*const SegmentPool>,
    hot: RefCell<Vec<Arc<Block>>>,
}

thread_local! {
    static LOCAL: Local = const {
        Local {
            pool: RefCell::new(None),
            pool_ptr: std::cell::Cell::new(std::ptr::null()),
            hot: RefCell::new(Vec::new()),
        }
    };
}

/// One segment of a pipe: a block and which bytes of it belong to the pipe.
pub(crate) struct Segment {
    pub(crate) block: Arc<Block>,
    /// Pipe position of the block's first byte.
    pub(crate) base: u64,
    /// Bytes written into the block (committed or not).
    pub(crate) filled: usize,
}

impl Segment {
    pub(crate) fn end(&self) -> u64 {
        self.base + self.filled as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pipe's own pool (a segment size other than the reactor's) is never trimmed, so it
    /// keeps two spare segments, not a burst's worth (it preallocated 4,096 queue slots,
    /// 64 KiB, per pipe, and kept up to 4,096 segments for the pipe's life).
    #[test]
    fn a_private_pool_keeps_two_segments_at_most() {
        let pool = SegmentPool::private(16 * 1024);
        let blocks: Vec<_> = (0..10).map(|_| pool.take(16 * 1024)).collect();
        for block in blocks {
            pool.give(block);
        }
        assert_eq!(pool.idle(), PRIVATE_POOL_CAPACITY);
        assert_eq!(
            pool.take(100).capacity,
            16 * 1024,
            "a pooled segment is reused"
        );
    }

    /// On its own thread the pool hands out the block given back last (still in cache), and
    /// its count includes that hot stack; other threads give back through the shared queue.
    #[test]
    fn the_owning_thread_reuses_the_block_freed_last() {
        let pool = SegmentPool::current();
        let (a, b) = (pool.take(10), pool.take(10));
        let (a_ptr, b_ptr) = (a.as_ptr(), b.as_ptr());
        let idle = pool.idle();
        pool.give(a);
        pool.give(b);
        assert_eq!(pool.idle(), idle + 2);
        assert_eq!(pool.take(10).as_ptr(), b_ptr, "last in, first out");
        assert_eq!(pool.take(10).as_ptr(), a_ptr);

        let elsewhere = pool.clone();
        std::thread::spawn(move || {
            let block = Arc::new(Block::new(4096));
            elsewhere.give(block);
            // Not this thread's pool: only its shared queue counts here.
            assert_eq!(elsewhere.idle(), elsewhere.free.len());
        })
        .join()
        .unwrap();
        assert_eq!(
            pool.free.len(),
            1,
            "a block given back elsewhere is in the shared queue"
        );
        // The shared queue serves when the hot stack is empty.
        let mut taken = Vec::new();
        while pool.idle() > 0 {
            taken.push(pool.take(10));
        }
        assert_eq!(pool.free.len(), 0);
    }
}
