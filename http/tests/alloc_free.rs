//! The plaintext path allocates nothing per request: 1,000 keep-alive requests after
//! warm-up, counted by a global allocator on every thread.

mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{BufRead, BufReader, Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};

use ringhop_http::Config;
use support::TestServer;

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards to the system allocator, only counting.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn plaintext_keep_alive_requests_allocate_nothing() {
    let server = TestServer::start(Config::default(), support::app::router());
    let mut stream = server.connect();
    stream.set_nodelay(true).unwrap();
    let request = b"GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n";
    // Responses have a fixed size here; read them without allocating on the client side.
    let mut response = [0u8; 256];
    let mut expected_len = 0;
    {
        stream.write_all(request).unwrap();
        let mut reader = BufReader::new(&mut stream);
        let mut line = String::new();
        while reader.read_line(&mut line).unwrap() > 2 {
            expected_len += line.len();
            line.clear();
        }
        expected_len += 2 + 13;
        let mut body = [0u8; 13];
        reader.read_exact(&mut body).unwrap();
    }
    let mut round_trip = |stream: &mut std::net::TcpStream| {
        stream.write_all(request).unwrap();
        stream.read_exact(&mut response[..expected_len]).unwrap();
        assert!(response[..expected_len].ends_with(b"Hello, World!"));
    };
    for _ in 0..500 {
        round_trip(&mut stream);
    }
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    for _ in 0..1_000 {
        round_trip(&mut stream);
    }
    let allocations = ALLOCATIONS.load(Ordering::Relaxed) - before;
    assert_eq!(
        allocations, 0,
        "{allocations} allocations in 1,000 requests"
    );
}
