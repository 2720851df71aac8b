//! The shape of a plain keep-alive request through the native server, on both drivers:
//! one task poll (the connection's) and 7 pipe locks per request — the server's own
//! counters, read before and after a run of round trips on one connection.

mod support;

use std::io::{Read, Write};

use ringhop_http::Config;
use ringhop_runtime::Driver;
use support::TestServer;

#[test]
fn a_plain_request_polls_one_task_and_takes_7_pipe_locks_on_both_drivers() {
    for driver in [Driver::Auto, Driver::Epoll] {
        let server = TestServer::start_on(driver, Config::default(), support::app::router());
        let mut stream = server.connect();
        stream.set_nodelay(true).unwrap();
        let request = b"GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n";
        let mut response = Vec::new();
        let mut round_trip = |stream: &mut std::net::TcpStream| {
            stream.write_all(request).unwrap();
            response.clear();
            let mut buf = [0u8; 512];
            while !response.ends_with(b"Hello, World!") {
                let n = stream.read(&mut buf).unwrap();
                assert!(n > 0, "closed");
                response.extend_from_slice(&buf[..n]);
            }
        };
        for _ in 0..50 {
            round_trip(&mut stream);
        }
        let before = ringhop_http::stats(&server.runtime).total;
        const REQUESTS: u64 = 400;
        for _ in 0..REQUESTS {
            round_trip(&mut stream);
        }
        let after = ringhop_http::stats(&server.runtime).total;
        assert_eq!(after.requests - before.requests, REQUESTS);
        let per_request = |a: u64, b: u64| (a - b) as f64 / REQUESTS as f64;
        let polls = per_request(after.task_polls, before.task_polls);
        let locks = per_request(after.pipe_locks, before.pipe_locks);
        let driver = server.runtime.driver();
        // The connection's poll: the pumps run on completions (io_uring) or inside the
        // driver at each readable edge (epoll), and its send right before the submit.
        assert!(
            polls <= 1.05,
            "{polls:.2} task polls per request on {driver:?}"
        );
        // The receive side's write, commit and flush (1); the connection's woken read (1),
        // its response's first write taking a tail segment (1) and its flush (1), then its
        // advance past the request together with the look for the next, which leaves its
        // waker so the wait takes no second lock (1); the send side's read (1) and its
        // advance together with its next look (1).
        assert!(
            locks <= 7.05,
            "{locks:.2} pipe locks per request on {driver:?}"
        );
        drop(stream);
        server.stop().unwrap();
    }
}
