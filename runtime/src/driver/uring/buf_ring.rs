//! The reactor's provided-buffer ring (`IORING_REGISTER_PBUF_RING`): receive buffers the
//! kernel picks from only when data arrives, so an idle connection pins no buffer.
//!
//! Ownership: a buffer id is either in the ring (the kernel may fill it) or handed out in a
//! CQE (ours until [`BufRing::recycle`] puts it back). Nothing is freed while registered.

use std::alloc::{self, Layout};
use std::cell::Cell;
use std::io;
use std::sync::atomic::{AtomicU16, Ordering};

use io_uring::{types::BufRingEntry, Submitter};

/// Buffer group id of the reactor's ring.
pub(crate) const BUF_GROUP: u16 = 0;

pub(crate) struct BufRing {
    entries: *mut BufRingEntry,
    ring_layout: Layout,
    buffers: *mut u8,
    buffers_layout: Layout,
    count: u16,
    buf_size: usize,
    tail: Cell<u16>,
}

impl BufRing {
    /// Allocates `count` buffers of `buf_size` bytes and registers them (Linux 5.19+).
    pub(crate) fn new(
        submitter: &Submitter<'_>,
        count: u16,
        buf_size: usize,
    ) -> io::Result<BufRing> {
        assert!(
            count.is_power_of_two(),
            "buffer count must be a power of two"
        );
        let ring_layout = Layout::from_size_align(count as usize * 16, 4096)
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        let buffers_layout = Layout::from_size_align(count as usize * buf_size, 4096)
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        // SAFETY: both layouts have non-zero size.
        let entries = unsafe { alloc::alloc_zeroed(ring_layout) }.cast::<BufRingEntry>();
        // SAFETY: as above.
        let buffers = unsafe { alloc::alloc(buffers_layout) };
        if entries.is_null() || buffers.is_null() {
            alloc::handle_alloc_error(ring_layout);
        }
        let ring = BufRing {
            entries,
            ring_layout,
            buffers,
            buffers_layout,
            count,
            buf_size,
            tail: Cell::new(0),
        };
        // SAFETY: the entry array is page aligned, `count` entries long, and lives until the
        // ring is dropped, which unregisters it first.
        unsafe {
            submitter.register_buf_ring_with_flags(entries as u64, count, BUF_GROUP, 0)?;
        }
        for bid in 0..count {
            ring.push(bid);
        }
        ring.publish();
        Ok(ring)
    }

    fn push(&self, bid: u16) {
        let tail = self.tail.get();
        let index = (tail & (self.count - 1)) as usize;
        // SAFETY: index < count, inside the entry array; the kernel only reads entries between
        // its head and the published tail, and this slot is past the published tail.
        let entry = unsafe { &mut *self.entries.add(index) };
        // SAFETY: bid < count, so the buffer lies inside the buffers allocation.
        entry.set_addr(unsafe { self.buffers.add(bid as usize * self.buf_size) } as u64);
        entry.set_len(self.buf_size as u32);
        entry.set_bid(bid);
        self.tail.set(tail.wrapping_add(1));
    }

    fn publish(&self) {
        // The ring's tail shares memory with entry 0's reserved field (offset 14).
        // SAFETY: offset 14 of the page-aligned entry array holds the u16 tail the kernel reads.
        let tail = unsafe { &*(self.entries.cast::<u8>().add(14).cast::<AtomicU16>()) };
        tail.store(self.tail.get(), Ordering::Release);
    }

    /// Gives buffer `bid` back to the kernel.
    pub(crate) fn recycle(&self, bid: u16) {
        self.push(bid);
        self.publish();
    }

    /// The first `len` bytes of buffer `bid`, which a CQE handed to us.
    pub(crate) fn bytes(&self, bid: u16, len: usize) -> &[u8] {
        let len = len.min(self.buf_size);
        // SAFETY: the CQE gave us `bid` and wrote `len` bytes into it; it stays ours (the
        // kernel does not touch it) until `recycle`.
        unsafe { std::slice::from_raw_parts(self.buffers.add(bid as usize * self.buf_size), len) }
    }

    /// Unregisters the ring; afterwards the memory may be freed.
    pub(crate) fn unregister(&self, submitter: &Submitter<'_>) -> io::Result<()> {
        submitter.unregister_buf_ring(BUF_GROUP)
    }
}

impl Drop for BufRing {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with these layouts; the driver unregisters the ring (or
        // leaks it, see Driver::drop) before dropping it.
        unsafe {
            alloc::dealloc(self.entries.cast(), self.ring_layout);
            alloc::dealloc(self.buffers, self.buffers_layout);
        }
    }
}
