//! The connection cap: each reactor stops accepting at its share of `max_connections`
//! (newcomers wait in the kernel's backlog) and resumes when a connection closes.

mod support;

use std::io::{BufReader, Read, Write};
use std::time::Duration;

use ringhop_http::Config;
use support::{read_reply, TestServer};

const REQUEST: &[u8] = b"GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n";

#[test]
fn at_the_cap_newcomers_wait_until_a_connection_closes() {
    // One reactor: its share is the whole cap.
    let server = TestServer::start(
        Config::default().max_connections(Some(4)),
        support::app::router(),
    );
    let mut open = Vec::new();
    for _ in 0..4 {
        let mut stream = server.connect();
        stream.write_all(REQUEST).unwrap();
        assert_eq!(
            read_reply(&mut BufReader::new(&mut stream), false).body,
            b"Hello, World!"
        );
        open.push(stream);
    }
    // The fifth connects (the kernel's backlog) but is not served while four are open.
    let mut fifth = server.connect();
    fifth
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    fifth.write_all(REQUEST).unwrap();
    let mut byte = [0u8; 1];
    let waited = fifth.read(&mut byte);
    assert!(
        matches!(&waited, Err(err) if err.kind() == std::io::ErrorKind::WouldBlock),
        "served over the cap: {waited:?}"
    );
    assert!(ringhop_http::stats(&server.runtime).total.paused_at_cap >= 1);
    // One closes: the fifth is served.
    drop(open.pop());
    fifth
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut reader = BufReader::new(&mut fifth);
    let mut status = [0u8; 12];
    reader.read_exact(&mut status).unwrap();
    assert_eq!(&status, b"HTTP/1.1 200");
    // The old ones still work.
    for stream in &mut open {
        stream.write_all(REQUEST).unwrap();
        assert_eq!(
            read_reply(&mut BufReader::new(stream), false).body,
            b"Hello, World!"
        );
    }
}
