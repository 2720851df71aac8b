//! Every strictness rule over a raw TcpStream: the expected status, then the connection is
//! closed, and the server keeps serving others.

mod support;

use std::io::{BufReader, Write};
use std::time::Duration;

use ringhop_http::Config;
use support::{read_reply, TestServer};

fn status_then_closed(server: &TestServer, request: &[u8]) -> u16 {
    let response = server.exchange(request);
    let status = response
        .split(' ')
        .nth(1)
        .unwrap_or_else(|| panic!("no response to {:?}", String::from_utf8_lossy(request)));
    assert!(
        response.contains("Connection: close"),
        "error response without Connection: close: {response}"
    );
    status.parse().unwrap()
}

#[test]
fn each_violation_gets_its_status_and_a_closed_connection() {
    let server = TestServer::start(Config::default(), support::app::router());
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("malformed request line", b"GET/ HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(), 400),
        ("missing Host", b"GET / HTTP/1.1\r\n\r\n".to_vec(), 400),
        ("two Hosts", b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n".to_vec(), 400),
        ("space before colon", b"GET / HTTP/1.1\r\nHost : a\r\n\r\n".to_vec(), 400),
        ("obs-fold", b"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n".to_vec(), 400),
        ("NUL in value", b"GET / HTTP/1.1\r\nHost: a\0b\r\n\r\n".to_vec(), 400),
        ("bare CR", b"GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n".to_vec(), 400),
        ("CL not decimal", b"POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n\r\n".to_vec(), 400),
        ("CL negative", b"POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: -5\r\n\r\n".to_vec(), 400),
        ("CL overflow", b"POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 184467440737095516160\r\n\r\n".to_vec(), 400),
        ("CL conflict", b"POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab".to_vec(), 400),
        ("CL with TE", b"POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n".to_vec(), 400),
        ("TE without chunked (length unknown)", b"POST /upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n".to_vec(), 400),
        ("chunked not the final coding", b"POST /upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n".to_vec(), 400),
        ("space in the target", b"GET /a b HTTP/1.1\r\nHost: a\r\n\r\n".to_vec(), 400),
        ("asterisk-form without OPTIONS", b"GET * HTTP/1.1\r\nHost: a\r\n\r\n".to_vec(), 400),
        ("bad chunk size", b"POST /upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n".to_vec(), 400),
        ("chunk framing", b"POST /upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcdef\r\n0\r\n\r\n".to_vec(), 400),
        ("URI too long", format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", "a".repeat(9000)).into_bytes(), 414),
        ("header section too large", format!("GET / HTTP/1.1\r\nHost: a\r\nX: {}\r\n\r\n", "b".repeat(40_000)).into_bytes(), 431),
        ("too many headers", format!("GET / HTTP/1.1\r\nHost: a\r\n{}\r\n", "X: y\r\n".repeat(101)).into_bytes(), 431),
        ("declared body too large", b"POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 999999999999\r\n\r\n".to_vec(), 413),
        ("HTTP/2.0", b"GET / HTTP/2.0\r\nHost: a\r\n\r\n".to_vec(), 505),
        ("chunked in two TE fields", b"POST /upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n".to_vec(), 400),
        ("chunked twice across fields", b"POST /upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n".to_vec(), 400),
        ("undecoded coding before chunked", b"POST /upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n".to_vec(), 501),
        ("Host not a uri-host", b"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n".to_vec(), 400),
        ("Host with a space", b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n".to_vec(), 400),
        ("userinfo in an absolute-form target", b"GET http://user@a/ HTTP/1.1\r\nHost: a\r\n\r\n".to_vec(), 400),
    ];
    for (name, request, expected) in cases {
        assert_eq!(status_then_closed(&server, &request), expected, "{name}");
    }
    // And the server still serves a well-formed request.
    let response = server.exchange(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
}

#[test]
fn chunked_body_over_the_limit_is_413() {
    let server = TestServer::start(Config::default().max_body(10), support::app::router());
    let status = status_then_closed(
        &server,
        b"POST /upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n20\r\n",
    );
    assert_eq!(status, 413);
}

#[test]
fn slow_header_gets_408_and_idle_connection_is_closed() {
    let config = Config::default()
        .header_timeout(Duration::from_millis(200))
        .idle_timeout(Duration::from_millis(200));
    let server = TestServer::start(config, support::app::router());
    // A head that never completes.
    let response = server.exchange(b"GET / HTTP/1.1\r\nHost: a\r\n");
    assert!(response.starts_with("HTTP/1.1 408"), "{response}");
    // An idle keep-alive connection is closed without a response.
    let mut stream = server.connect();
    let mut reader = BufReader::new(&mut stream);
    let mut out = Vec::new();
    let started = std::time::Instant::now();
    std::io::Read::read_to_end(&mut reader, &mut out).unwrap();
    assert!(out.is_empty());
    assert!(started.elapsed() < Duration::from_secs(5));
    let stats = ringhop_http::stats(&server.runtime);
    assert_eq!(stats.total.closed_header_timeout, 1, "{stats:?}");
    assert_eq!(stats.total.closed_idle, 1, "{stats:?}");
}

#[test]
fn a_connection_that_never_sends_is_closed_at_the_header_timeout_not_the_idle_one() {
    let config = Config::default()
        .header_timeout(Duration::from_secs(1))
        .idle_timeout(Duration::from_secs(60));
    let server = TestServer::start(config, support::app::router());
    // Served once: idle between requests, under the idle timeout.
    let mut served = server.connect();
    served
        .write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        .unwrap();
    let mut reader = BufReader::new(served.try_clone().unwrap());
    assert_eq!(
        read_reply(&mut BufReader::new(&mut served), false).status,
        200
    );
    // Connected, silent: closed (without a response) once the header timeout is over.
    let mut silent = server.connect();
    let started = std::time::Instant::now();
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut silent, &mut out).unwrap();
    assert!(out.is_empty());
    let waited = started.elapsed();
    // The watchdog ticks once a second: up to a second late.
    assert!(waited < Duration::from_secs(4), "closed after {waited:?}");
    // The served connection is still open.
    reader
        .get_mut()
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut byte = [0u8; 1];
    let still_open = matches!(
        std::io::Read::read(reader.get_mut(), &mut byte),
        Err(err) if err.kind() == std::io::ErrorKind::WouldBlock
    );
    assert!(still_open, "the keep-alive connection was closed too");
}

#[test]
fn a_panicking_handler_gets_500_and_others_are_unaffected() {
    let server = TestServer::start(Config::default(), support::app::router());
    let mut bystander = server.connect();
    bystander
        .write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        .unwrap();
    let reply = read_reply(&mut BufReader::new(&mut bystander), false);
    assert_eq!(reply.status, 200);
    assert_eq!(
        status_then_closed(&server, b"GET /boom HTTP/1.1\r\nHost: a\r\n\r\n"),
        500
    );
    // The keep-alive bystander on the same reactor is still served.
    bystander
        .write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        .unwrap();
    let reply = read_reply(&mut BufReader::new(&mut bystander), false);
    assert_eq!(reply.body, b"Hello, World!");
}

#[test]
fn an_absolute_form_authority_replaces_host() {
    let server = TestServer::start(Config::default(), support::app::router());
    let response = server.exchange(
        b"GET http://internal/authority HTTP/1.1\r\nHost: public\r\nConnection: close\r\n\r\n",
    );
    assert!(response.starts_with("HTTP/1.1 200 "), "{response}");
    assert!(
        response.ends_with("\r\n\r\nauthority=internal host=public"),
        "{response}"
    );
    let response =
        server.exchange(b"GET /authority HTTP/1.1\r\nHost: public:81\r\nConnection: close\r\n\r\n");
    assert!(
        response.ends_with("\r\n\r\nauthority=public:81 host=public:81"),
        "{response}"
    );
}

#[test]
fn chunk_extensions_and_trailers_are_bounded() {
    let server = TestServer::start(Config::default(), support::app::router());
    let head = "POST /upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
    // Six chunks with 3,000 bytes of extensions each: 18,000 > 16 KiB in total, while every
    // chunk line stays under the 4 KiB line limit.
    let ext = format!(";e={}", "x".repeat(2997));
    let many_extensions = format!("{head}{}0\r\n\r\n", format!("1{ext}\r\na\r\n").repeat(6));
    assert_eq!(status_then_closed(&server, many_extensions.as_bytes()), 400);
    // Within the limit: accepted.
    let few_extensions = format!("{head}{}0\r\n\r\n", format!("1{ext}\r\na\r\n").repeat(5));
    let few_extensions =
        few_extensions.replace("HTTP/1.1\r\n", "HTTP/1.1\r\nConnection: close\r\n");
    let response = server.exchange(few_extensions.as_bytes());
    assert!(response.starts_with("HTTP/1.1 200 "), "{response}");

    let too_many_fields = format!("{head}0\r\n{}\r\n", "T: v\r\n".repeat(101));
    assert_eq!(status_then_closed(&server, too_many_fields.as_bytes()), 431);
    let too_large = format!(
        "{head}0\r\n{}\r\n",
        format!("T: {}\r\n", "v".repeat(3000)).repeat(6)
    );
    assert_eq!(status_then_closed(&server, too_large.as_bytes()), 431);
    // One field longer than a line may be (4 KiB): too large as well, not malformed.
    let one_long_field = format!("{head}0\r\nT: {}\r\n\r\n", "v".repeat(20_000));
    assert_eq!(status_then_closed(&server, one_long_field.as_bytes()), 431);
    let malformed = format!("{head}0\r\nno colon here\r\n\r\n");
    assert_eq!(status_then_closed(&server, malformed.as_bytes()), 400);
    let fine = format!("{head}0\r\nT: v\r\n\r\n")
        .replace("HTTP/1.1\r\n", "HTTP/1.1\r\nConnection: close\r\n");
    assert!(server
        .exchange(fine.as_bytes())
        .starts_with("HTTP/1.1 200 "));
}

#[test]
fn a_keep_alive_connection_s_later_hosts_are_checked_too() {
    // The parser skips checking a Host identical to the connection's last one: each later
    // request whose Host differs, even by a byte or only in length, is checked in full.
    let server = TestServer::start(Config::default(), support::app::router());
    for bad in ["a b", "ab/", "a", "a%2"] {
        let mut client = server.connect();
        let mut reader = BufReader::new(&mut client);
        for _ in 0..2 {
            let good = b"GET / HTTP/1.1\r\nHost: ab\r\n\r\n";
            reader.get_mut().write_all(good).unwrap();
            assert_eq!(read_reply(&mut reader, false).status, 200);
        }
        let request = format!("GET / HTTP/1.1\r\nHost: {bad}\r\n\r\n");
        reader.get_mut().write_all(request.as_bytes()).unwrap();
        let expected = if bad == "a" { 200 } else { 400 };
        assert_eq!(read_reply(&mut reader, false).status, expected, "{bad:?}");
    }
}

#[test]
fn a_malformed_request_behind_good_pipelined_ones_is_answered_in_its_turn() {
    // Three requests in one write: the two good ones are answered, then the malformed one
    // gets its 400 and the connection closes — whether the parser meets it in the bytes of
    // the read it already has or in a fresh one.
    let server = TestServer::start(Config::default(), support::app::router());
    for bad in [
        &b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n"[..],
        b"GET / HTTP/1.1\r\nHo st: a\r\n\r\n",
    ] {
        let mut batch =
            b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n".to_vec();
        batch.extend_from_slice(bad);
        let mut client = server.connect();
        let mut reader = BufReader::new(&mut client);
        reader.get_mut().write_all(&batch).unwrap();
        for _ in 0..2 {
            assert_eq!(read_reply(&mut reader, false).status, 200);
        }
        let reply = read_reply(&mut reader, false);
        assert_eq!(reply.status, 400);
        assert_eq!(reply.header("connection"), Some("close"));
    }
}

#[test]
fn a_later_http_1_minor_version_is_answered_as_http_1_1() {
    // RFC 9110 §2.5: HTTP/1.2 to 1.9 are served as the highest minor version implemented,
    // with 1.1's rules (keep-alive by default, Host required); 2.0 stays 505.
    let server = TestServer::start(Config::default(), support::app::router());
    let mut client = server.connect();
    let mut reader = BufReader::new(&mut client);
    let batch = b"GET / HTTP/1.2\r\nHost: a\r\n\r\n\
        POST /echo HTTP/1.9\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello\
        GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    reader.get_mut().write_all(batch).unwrap();
    let first = read_reply(&mut reader, false);
    assert_eq!(first.status, 200);
    assert_eq!(first.header("connection"), None, "keep-alive, as 1.1");
    let echoed = read_reply(&mut reader, false);
    assert_eq!((echoed.status, &echoed.body[..]), (200, &b"hello"[..]));
    assert_eq!(read_reply(&mut reader, false).status, 200);
    let mut line = String::new();
    reader
        .get_mut()
        .write_all(b"GET / HTTP/1.3\r\n\r\n")
        .unwrap();
    std::io::BufRead::read_line(&mut reader, &mut line).unwrap();
    assert!(line.starts_with("HTTP/1.1 400 "), "no Host: {line:?}");
}
