//! Owned buffers for I/O: the op owns the buffer while the kernel uses it, and hands it back
//! with the result (`let (res, buf) = stream.recv(buf).await`).

/// A buffer the kernel may read from (sends).
///
/// # Safety
///
/// `stable_ptr` must point to `bytes_init` initialised bytes that stay valid and at the same
/// address while the value is alive, even when the value itself is moved (heap or static
/// memory, never inline storage).
pub unsafe trait IoBuf: 'static {
    /// Start of the bytes.
    fn stable_ptr(&self) -> *const u8;
    /// Number of initialised bytes (what a send sends).
    fn bytes_init(&self) -> usize;
}

/// A buffer the kernel may write into (receives).
///
/// # Safety
///
/// As for [`IoBuf`], and `stable_mut_ptr` must be valid for writes of `bytes_total` bytes.
pub unsafe trait IoBufMut: IoBuf {
    /// Start of the writable memory.
    fn stable_mut_ptr(&mut self) -> *mut u8;
    /// Capacity the kernel may fill.
    fn bytes_total(&mut self) -> usize;
    /// Records that the first `n` bytes are initialised.
    ///
    /// # Safety
    ///
    /// The first `n` bytes must have been written.
    unsafe fn set_init(&mut self, n: usize);
}

// SAFETY: a Vec's heap buffer does not move when the Vec does; `len` bytes are initialised.
unsafe impl IoBuf for Vec<u8> {
    fn stable_ptr(&self) -> *const u8 {
        self.as_ptr()
    }
    fn bytes_init(&self) -> usize {
        self.len()
    }
}

// SAFETY: the whole capacity is writable heap memory owned by the Vec.
unsafe impl IoBufMut for Vec<u8> {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.as_mut_ptr()
    }
    fn bytes_total(&mut self) -> usize {
        self.capacity()
    }
    unsafe fn set_init(&mut self, n: usize) {
        if self.len() < n {
            // SAFETY: the caller promises the first `n` bytes were written; n ≤ capacity.
            unsafe { self.set_len(n) };
        }
    }
}

// SAFETY: a boxed slice's heap memory does not move with the box; it is fully initialised.
unsafe impl IoBuf for Box<[u8]> {
    fn stable_ptr(&self) -> *const u8 {
        self.as_ptr()
    }
    fn bytes_init(&self) -> usize {
        self.len()
    }
}

// SAFETY: the whole boxed slice is writable and owned.
unsafe impl IoBufMut for Box<[u8]> {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.as_mut_ptr()
    }
    fn bytes_total(&mut self) -> usize {
        self.len()
    }
    unsafe fn set_init(&mut self, _n: usize) {}
}

// SAFETY: static memory never moves or goes away.
unsafe impl IoBuf for &'static [u8] {
    fn stable_ptr(&self) -> *const u8 {
        self.as_ptr()
    }
    fn bytes_init(&self) -> usize {
        self.len()
    }
}

// SAFETY: static memory never moves or goes away.
unsafe impl IoBuf for &'static str {
    fn stable_ptr(&self) -> *const u8 {
        self.as_ptr()
    }
    fn bytes_init(&self) -> usize {
        self.len()
    }
}
