//! The connection cap: each reactor stops accepting at its share of `max_connections`
//! (newcomers wait in the kernel's backlog) and resumes when a connection closes.

mod support;

use std::io::{BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use ringhop_http::Config;
use support::{read_reply, TestServer};

const REQUEST: &[u8] = b"GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n";

/// Connections to `port` that the server accepted (established, with a socket inode: one
/// still in the listen backlog has none), from `/proc/net/tcp`; other tests' sockets in this
/// process do not count.
fn accepted_on(port: u16) -> usize {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    let local_port = format!(":{port:04X}");
    table
        .lines()
        .skip(1)
        .filter(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            fields.len() > 9
                && fields[1].ends_with(&local_port)
                && fields[3] == "01"
                && fields[9] != "0"
        })
        .count()
}

/// Sends `REQUEST` on `stream` and checks no answer comes within `wait` (the connection
/// waits in the kernel's backlog); the stream keeps the read timeout.
fn assert_not_served_within(stream: &mut TcpStream, wait: Duration, what: &str) {
    stream.set_read_timeout(Some(wait)).unwrap();
    stream.write_all(REQUEST).unwrap();
    let mut byte = [0u8; 1];
    let waited = stream.read(&mut byte);
    assert!(
        matches!(&waited, Err(err) if err.kind() == std::io::ErrorKind::WouldBlock),
        "served {what}: {waited:?}"
    );
}

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
    assert_not_served_within(&mut fifth, Duration::from_millis(300), "over the cap");
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

#[test]
fn a_burst_of_connections_is_not_accepted_past_the_cap() {
    // At the cap, newcomers wait in the kernel's backlog, not as accepted sockets holding
    // fds in the server: a burst that arrives at once must not be taken in beyond it. (The
    // io_uring multishot accept took every connection of a burst before its cancel landed.)
    const CAP: usize = 8;
    const BURST: usize = 200;
    let server = TestServer::start(
        Config::default().max_connections(Some(CAP)),
        support::app::router(),
    );
    // From several threads at once: a burst, not a sequence the server keeps up with.
    let addr = server.addr;
    let clients: Vec<TcpStream> = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..8)
            .map(|_| {
                scope.spawn(move || {
                    (0..BURST / 8)
                        .map(|_| TcpStream::connect(addr).unwrap())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect()
    });
    // Whatever the server accepts, it accepts within this.
    std::thread::sleep(Duration::from_millis(300));
    let accepted = accepted_on(server.addr.port());
    assert!(
        accepted <= CAP + 1,
        "{accepted} connections accepted of a burst of {BURST} at a cap of {CAP}"
    );
    // And they are served as the first ones close.
    drop(clients);
    let mut late = server.connect();
    late.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    late.write_all(REQUEST).unwrap();
    assert_eq!(
        read_reply(&mut BufReader::new(&mut late), false).body,
        b"Hello, World!"
    );
}

#[test]
fn the_cap_counts_sockets_until_they_close_not_only_while_http_runs_on_them() {
    // A connection the server has closed (`Connection: close` answered) lingers for the
    // peer's FIN: its socket is still open, so it still counts. The cap used to let a
    // newcomer in as soon as the HTTP task ended, so a peer that never sends its FIN (or
    // never reads a last response) held sockets beyond `max_connections`.
    let server = TestServer::start(
        Config::default()
            .max_connections(Some(1))
            .linger(ringhop_http::Linger {
                timeout: Duration::from_secs(30),
                ..Default::default()
            }),
        support::app::router(),
    );
    let mut first = server.connect();
    first
        .write_all(b"GET /plaintext HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = Vec::new();
    first.read_to_end(&mut answer).unwrap();
    assert!(answer.starts_with(b"HTTP/1.1 200"));
    // The server is done with the first (its FIN arrived) but the client keeps its socket
    // open: the second waits in the backlog.
    let mut second = server.connect();
    assert_not_served_within(
        &mut second,
        Duration::from_millis(500),
        "while the first socket was still open",
    );
    // The first closes: its socket goes, and the second is served.
    drop(first);
    second
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let reply = read_reply(&mut BufReader::new(&mut second), false);
    assert_eq!(reply.body, b"Hello, World!");
}

#[test]
fn limits_and_timeouts_at_their_maximum_mean_no_limit() {
    // `usize::MAX` and `Duration::MAX` are how a user says "no limit": every deadline and
    // bound computed from them saturates. Each of these panicked once (`Instant + MAX`,
    // `max_head + 1`), so no request on this connection was answered.
    let never = Duration::MAX;
    let config = Config::default()
        .max_head(usize::MAX)
        .max_request_line(usize::MAX)
        .header_timeout(never)
        .idle_timeout(never)
        .drain_timeout(never)
        .linger(ringhop_http::Linger {
            timeout: never,
            ..Default::default()
        })
        .min_request_body_data_rate(Some(ringhop_http::MinDataRate {
            bytes_per_second: 1,
            grace: never,
        }));
    let server = TestServer::start(config, support::app::router());
    let mut stream = server.connect();
    let mut reader = BufReader::new(&mut stream);
    // A later minor version, served as HTTP/1.1.
    reader
        .get_mut()
        .write_all(b"GET / HTTP/1.2\r\nHost: a\r\n\r\n")
        .unwrap();
    assert_eq!(read_reply(&mut reader, false).status, 200);
    // A head larger than a segment, arriving in two writes.
    let long = format!(
        "GET / HTTP/1.1\r\nHost: a\r\nX-Pad: {}\r\n",
        "p".repeat(6000)
    );
    reader.get_mut().write_all(long.as_bytes()).unwrap();
    std::thread::sleep(Duration::from_millis(20));
    reader.get_mut().write_all(b"\r\n").unwrap();
    assert_eq!(read_reply(&mut reader, false).status, 200);
    // A body, read under the body rate.
    reader
        .get_mut()
        .write_all(b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nping")
        .unwrap();
    let reply = read_reply(&mut reader, false);
    assert_eq!((reply.status, &reply.body[..]), (200, &b"ping"[..]));
    // An early answer whose connection lingers to discard the unread body.
    reader
        .get_mut()
        .write_all(b"POST /ignore HTTP/1.1\r\nHost: a\r\nContent-Length: 10000000\r\n\r\nabc")
        .unwrap();
    let reply = read_reply(&mut reader, false);
    assert_eq!(
        (reply.status, reply.header("connection")),
        (200, Some("close"))
    );
    drop(reader);
    drop(stream);
    server.stop().unwrap();
}
