//! Clients that pipeline thousands of requests and never read must not stall a fresh
//! client on the same reactor (alone in its binary: it measures latency).

mod support;

use std::io::{BufReader, Write};
use std::time::{Duration, Instant};

use ringhop_http::Config;
use support::{read_reply, TestServer};

#[test]
fn clients_that_pipeline_without_reading_do_not_stall_a_fresh_client() {
    let server = TestServer::start(Config::default(), support::app::router());
    let request = b"GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n";
    // Kept open (never read) until the test ends.
    let _flooders = support::never_reading_clients(&server, &request.repeat(20_000), 200);
    let mut fresh = server.connect();
    let mut reading = fresh.try_clone().unwrap();
    let mut reader = BufReader::new(&mut reading);
    let mut latencies = Vec::new();
    for _ in 0..100 {
        let started = Instant::now();
        fresh.write_all(request).unwrap();
        let reply = read_reply(&mut reader, false);
        assert_eq!(reply.body, b"Hello, World!");
        latencies.push(started.elapsed());
    }
    latencies.sort();
    let (p50, p99, worst) = (latencies[49], latencies[98], latencies[99]);
    eprintln!(
        "fresh client under a pipelining flood, 100 requests: p50 {p50:?}, p99 {p99:?}, \
         worst {worst:?}"
    );
    // The target is 50 ms on an idle machine. The 2-core VM this runs on measured p99s from
    // 19 to 150 ms across runs of the same build (the worst of 100 up to 290 ms): the bound
    // is for the failure this guards against, a fresh client waiting seconds. A debug build
    // runs the server ten times slower or more (p99 830 ms measured): its bound is 3 s, which
    // a server that served the flood (4M requests) first would still miss by minutes.
    let bound = if cfg!(debug_assertions) {
        Duration::from_secs(3)
    } else {
        Duration::from_millis(300)
    };
    assert!(
        p99 < bound,
        "a fresh client's p99 was {p99:?} behind clients that never read"
    );
}
