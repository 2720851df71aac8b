//! `Builder::spin_before_park`: while an idle reactor spins it sees remote wakes without an
//! eventfd write, and it still notices completions and due timers at once (a spin that only
//! watched the remote queue would delay them by the whole spin time).

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use ringhop_runtime::net::TcpListener;
use ringhop_runtime::{self as rt, Runtime};

/// Far longer than any delay the tests accept, so a missed event shows as a timeout.
const SPIN: Duration = Duration::from_secs(2);

fn spinning_runtime() -> Runtime {
    Runtime::builder()
        .reactors(1)
        .pin_cores(false)
        .spin_before_park(SPIN)
        .build()
        .expect("io_uring runtime")
}

#[test]
fn remote_posts_reach_a_spinning_reactor_without_eventfd_writes() {
    let runtime = spinning_runtime();
    let handle = runtime.handles()[0].clone();
    // Let it go idle and start spinning.
    std::thread::sleep(Duration::from_millis(20));
    let before = handle.stats();
    for i in 0..100u32 {
        let (tx, rx) = std::sync::mpsc::channel();
        let sent = Instant::now();
        handle.post(move || tx.send(i).unwrap()).unwrap();
        assert_eq!(rx.recv_timeout(SPIN / 2).expect("post ran"), i);
        assert!(sent.elapsed() < SPIN / 2);
        std::thread::sleep(Duration::from_micros(200));
    }
    let after = handle.stats();
    assert_eq!(after.posts - before.posts, 100);
    assert_eq!(
        after.eventfd_writes, before.eventfd_writes,
        "a spinning reactor is awake: producers must not write its eventfd"
    );
}

#[test]
fn a_spinning_reactor_reaps_socket_completions_at_once() {
    let runtime = spinning_runtime();
    let addr = runtime.block_on_local(|| async {
        let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        rt::spawn_local(async move {
            let stream = listener.accept().await.unwrap();
            let mut buf = Vec::with_capacity(64);
            loop {
                let (res, filled) = stream.recv(buf).await;
                if !matches!(res, Ok(n) if n > 0) {
                    break;
                }
                let (res, mut sent) = stream.send_all(filled).await;
                res.unwrap();
                sent.clear();
                buf = sent;
            }
        });
        addr
    });
    let mut client = std::net::TcpStream::connect(addr).unwrap();
    client.set_nodelay(true).unwrap();
    for round in 0..20u8 {
        // The reactor is idle (spinning) when each message arrives.
        std::thread::sleep(Duration::from_millis(5));
        let start = Instant::now();
        client.write_all(&[round; 32]).unwrap();
        let mut echoed = [0u8; 32];
        client.read_exact(&mut echoed).unwrap();
        assert_eq!(echoed, [round; 32]);
        assert!(
            start.elapsed() < Duration::from_millis(500),
            "round {round} took {:?}: the spin did not notice the completion",
            start.elapsed()
        );
    }
}

#[test]
fn timers_fire_on_time_while_spinning() {
    let runtime = spinning_runtime();
    let late = runtime.block_on_local(|| async {
        let mut worst = Duration::ZERO;
        for _ in 0..5 {
            let start = Instant::now();
            rt::time::sleep(Duration::from_millis(20)).await;
            worst = worst.max(start.elapsed().saturating_sub(Duration::from_millis(20)));
        }
        worst
    });
    assert!(
        late < Duration::from_millis(200),
        "a 20 ms sleep fired {late:?} late: the spin ignored the timer deadline"
    );
}
