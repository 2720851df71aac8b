//! The connection hot path allocates nothing: after warm-up, echo round trips through
//! `connect` (multishot recv → inbound pipe → application → outbound pipe → sendmsg) make no
//! heap allocation at all, on any thread.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};

use ringhop_pipes::connect;
use ringhop_runtime::{self as rt, net::TcpListener, Runtime};

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
fn echo_round_trips_allocate_nothing_after_warm_up() {
    let runtime = Runtime::builder()
        .reactors(1)
        .pin_cores(false)
        .build()
        .unwrap();
    let addr = runtime.block_on_local(|| async {
        let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        rt::spawn_local(async move {
            let mut pipe = connect(listener.accept().await.unwrap()).unwrap();
            while let Ok(result) = pipe.input.read().await {
                let (len, done) = (result.len(), result.is_completed());
                for chunk in result.chunks() {
                    pipe.output.write(chunk);
                }
                pipe.input.advance_to(len, len).unwrap();
                if pipe.output.flush().await.is_err() || done {
                    break;
                }
            }
        });
        addr
    });
    let mut client = std::net::TcpStream::connect(addr).unwrap();
    client.set_nodelay(true).unwrap();
    let message = [42u8; 100];
    let mut echoed = [0u8; 100];
    let mut round_trip = |client: &mut std::net::TcpStream| {
        client.write_all(&message).unwrap();
        client.read_exact(&mut echoed).unwrap();
        assert_eq!(echoed, message);
    };
    for _ in 0..200 {
        round_trip(&mut client);
    }
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    for _ in 0..1_000 {
        round_trip(&mut client);
    }
    let allocations = ALLOCATIONS.load(Ordering::Relaxed) - before;
    assert_eq!(
        allocations, 0,
        "{allocations} allocations in 1,000 echo round trips"
    );
}
