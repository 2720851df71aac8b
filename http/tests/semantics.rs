//! HTTP/1.1 semantics over raw sockets: pipelining, byte-by-byte requests, large chunked
//! echo, keep-alive, HTTP/1.0, HEAD, absolute-form, 100-continue, graceful shutdown.

mod support;

use std::io::{BufReader, Read, Write};
use std::time::Duration;

use ringhop_http::Config;
use support::{read_reply, TestServer};

fn server() -> TestServer {
    TestServer::start(Config::default(), support::app::router())
}

#[test]
fn sixteen_pipelined_requests_in_one_write_are_answered_in_order() {
    let server = server();
    let mut stream = server.connect();
    let mut batch = Vec::new();
    for i in 0..16 {
        let path = if i % 2 == 0 { "/" } else { "/nope" };
        batch.extend_from_slice(format!("GET {path} HTTP/1.1\r\nHost: a\r\n\r\n").as_bytes());
    }
    stream.write_all(&batch).unwrap();
    let mut reader = BufReader::new(&mut stream);
    for i in 0..16 {
        let reply = read_reply(&mut reader, false);
        assert_eq!(
            reply.status,
            if i % 2 == 0 { 200 } else { 404 },
            "response {i}"
        );
    }
}

#[test]
fn a_handler_status_that_cannot_be_final_is_sent_as_500() {
    // A 1xx is interim: sent as the answer, the client would read on for a final response
    // and take the next request's for this one's. A status outside 100-999 is no status.
    let server = server();
    let mut stream = server.connect();
    let mut batch = Vec::new();
    for query in ["103", "100", "42", "1000", "599"] {
        batch.extend_from_slice(
            format!("GET /interim?{query} HTTP/1.1\r\nHost: a\r\n\r\n").as_bytes(),
        );
    }
    batch.extend_from_slice(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    stream.write_all(&batch).unwrap();
    let mut reader = BufReader::new(&mut stream);
    for (i, expected) in [500, 500, 500, 500, 599, 200].into_iter().enumerate() {
        let reply = read_reply(&mut reader, false);
        assert_eq!(reply.status, expected, "response {i}");
    }
}

#[test]
fn a_body_read_to_its_last_byte_but_not_to_its_end_is_not_the_next_request() {
    // The handler takes one chunk (the whole 5-byte body) and never asks for the end: the
    // body's bytes are consumed all the same, so the next request starts after them, sent
    // after the response, pipelined behind the body in one write, or as an upgrade.
    let server = server();
    let mut stream = server.connect();
    let mut reader = BufReader::new(&mut stream);
    let post = b"POST /first HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello";
    reader.get_mut().write_all(post).unwrap();
    assert_eq!(read_reply(&mut reader, false).body, b"hello");
    std::thread::sleep(Duration::from_millis(20));
    reader
        .get_mut()
        .write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        .unwrap();
    let reply = read_reply(&mut reader, false);
    assert_eq!(
        (reply.status, &reply.body[..]),
        (200, &b"Hello, World!"[..])
    );
    let mut batch = post.to_vec();
    batch.extend_from_slice(post);
    batch.extend_from_slice(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    reader.get_mut().write_all(&batch).unwrap();
    for expected in [&b"hello"[..], b"hello", b"Hello, World!"] {
        let reply = read_reply(&mut reader, false);
        assert_eq!((reply.status, &reply.body[..]), (200, expected));
    }
}

#[test]
fn a_pipelined_head_cut_at_the_end_of_a_write_is_completed_by_the_next() {
    // The second head starts in the bytes the server already read and ends in later ones.
    let server = server();
    let mut stream = server.connect();
    let mut reader = BufReader::new(&mut stream);
    let both = b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /nope HTTP/1.1\r\nHost: a\r\n\r\n";
    for cut in [28, 30, 40, both.len() - 1] {
        reader.get_mut().write_all(&both[..cut]).unwrap();
        assert_eq!(read_reply(&mut reader, false).status, 200, "cut at {cut}");
        std::thread::sleep(Duration::from_millis(20));
        reader.get_mut().write_all(&both[cut..]).unwrap();
        assert_eq!(read_reply(&mut reader, false).status, 404, "cut at {cut}");
    }
}

#[test]
fn a_pipelined_head_that_straddles_two_segments_after_a_long_one_is_served() {
    // The first request fills a new connection's first 4 KiB segment nearly to its end;
    // the next head starts there and continues in the second segment, and the rest of it
    // comes later. Its partial copy replaces the first head: nothing of the first head
    // (its Host's position) may be looked up in the copy. It was, and the connection task
    // panicked on the index, without an answer.
    let server = server();
    for tail in [1, 4, 6, 10, 20, 30] {
        let mut stream = server.connect();
        let mut reader = BufReader::new(&mut stream);
        let second = b"GET /authority HTTP/1.1\r\nHost: second.example\r\n\r\n";
        let skeleton =
            "GET /authority HTTP/1.1\r\nHost: a-rather-long-first.example\r\nX-Pad: \r\n\r\n";
        let pad = "p".repeat(4096 - tail - skeleton.len());
        let first = format!(
            "GET /authority HTTP/1.1\r\nHost: a-rather-long-first.example\r\nX-Pad: {pad}\r\n\r\n"
        );
        assert_eq!(first.len(), 4096 - tail);
        let cut = tail + 4;
        let mut batch = first.into_bytes();
        batch.extend_from_slice(&second[..cut]);
        reader.get_mut().write_all(&batch).unwrap();
        let reply = read_reply(&mut reader, false);
        assert_eq!(reply.status, 200, "first request, tail {tail}");
        std::thread::sleep(Duration::from_millis(20));
        reader.get_mut().write_all(&second[cut..cut + 1]).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        reader.get_mut().write_all(&second[cut + 1..]).unwrap();
        let reply = read_reply(&mut reader, false);
        assert_eq!(reply.status, 200, "second request, tail {tail}");
        assert_eq!(
            String::from_utf8_lossy(&reply.body),
            "authority=second.example host=second.example",
            "tail {tail}"
        );
    }
}

#[test]
fn a_request_sent_byte_by_byte() {
    let server = server();
    let mut stream = server.connect();
    stream.set_nodelay(true).unwrap();
    for byte in b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello" {
        stream.write_all(&[*byte]).unwrap();
        std::thread::sleep(Duration::from_micros(200));
    }
    let reply = read_reply(&mut BufReader::new(&mut stream), false);
    assert_eq!(reply.body, b"hello");
}

#[test]
fn eight_mib_chunked_echo() {
    let server = server();
    let mut stream = server.connect();
    let body: Vec<u8> = (0..8u32 << 20).map(|i| (i % 251) as u8).collect();
    let writer = {
        let mut stream = stream.try_clone().unwrap();
        let body = body.clone();
        std::thread::spawn(move || {
            stream
                .write_all(b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Type: application/octet-stream\r\n\r\n")
                .unwrap();
            for piece in body.chunks(100_003) {
                stream
                    .write_all(format!("{:x};ext=1\r\n", piece.len()).as_bytes())
                    .unwrap();
                stream.write_all(piece).unwrap();
                stream.write_all(b"\r\n").unwrap();
            }
            stream.write_all(b"0\r\nTrailer: x\r\n\r\n").unwrap();
        })
    };
    let reply = read_reply(&mut BufReader::new(&mut stream), false);
    writer.join().unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.header("content-type"),
        Some("application/octet-stream")
    );
    assert_eq!(reply.body.len(), body.len());
    assert!(reply.body == body);
}

#[test]
fn keep_alive_reuses_the_connection_and_http_1_0_closes() {
    let server = server();
    let mut stream = server.connect();
    for _ in 0..3 {
        stream
            .write_all(b"GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n")
            .unwrap();
        let reply = read_reply(&mut BufReader::new(&mut stream), false);
        assert_eq!(reply.body, b"Hello, World!");
        assert!(reply.header("date").is_some_and(|d| d.ends_with(" GMT")));
        assert_eq!(reply.header("server"), Some("ringhop"));
    }
    // HTTP/1.0 without keep-alive: answered, then closed.
    let response = server.exchange(b"GET / HTTP/1.0\r\n\r\n");
    assert!(response.starts_with("HTTP/1.0 200 OK"), "{response}");
    assert!(response.contains("Connection: close"));
    // HTTP/1.0 with keep-alive: the connection stays.
    let mut stream = server.connect();
    for _ in 0..2 {
        stream
            .write_all(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            .unwrap();
        let reply = read_reply(&mut BufReader::new(&mut stream), false);
        assert_eq!(reply.header("connection"), Some("keep-alive"));
    }
    // Connection: close in 1.1.
    let response = server.exchange(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    assert!(response.ends_with("Hello, World!"), "{response}");
}

#[test]
fn head_and_absolute_form() {
    let server = server();
    let mut stream = server.connect();
    stream.write_all(b"HEAD /plaintext HTTP/1.1\r\nHost: a\r\n\r\nGET http://a/plaintext?x=1 HTTP/1.1\r\nHost: a\r\n\r\n").unwrap();
    let mut reader = BufReader::new(&mut stream);
    let head = read_reply(&mut reader, true);
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-length"), Some("13"));
    let get = read_reply(&mut reader, false);
    assert_eq!(
        get.body, b"Hello, World!",
        "the HEAD response carried no body"
    );
}

#[test]
fn expect_100_continue_only_when_the_body_is_read() {
    let server = server();
    let mut stream = server.connect();
    stream
        .write_all(
            b"POST /echo HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n",
        )
        .unwrap();
    let mut interim = [0u8; 25];
    stream.read_exact(&mut interim).unwrap();
    assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    stream.write_all(b"ping").unwrap();
    let reply = read_reply(&mut BufReader::new(&mut stream), false);
    assert_eq!(reply.body, b"ping");

    // A handler that never reads the body: no 100, a final answer, and the connection
    // closes (the client must not send the body on it).
    let response = server.exchange(
        b"POST /ignore HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n",
    );
    assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
    assert!(!response.contains("100 Continue"));
    // ... and says so, also when the client sent its body (and more) right away.
    assert!(response.contains("\r\nConnection: close\r\n"), "{response}");
    let response = server.exchange(
        b"POST /nope HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabcGET / HTTP/1.1\r\nHost: a\r\n\r\n",
    );
    assert!(response.starts_with("HTTP/1.1 404 "), "{response}");
    assert!(response.contains("\r\nConnection: close\r\n"), "{response}");
    assert!(!response.contains("Hello, World!"), "{response}");
}

#[test]
fn unread_bodies_are_drained_to_keep_the_connection() {
    let server = server();
    let mut stream = server.connect();
    stream
        .write_all(b"POST /ignore HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n0123456789GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        .unwrap();
    let mut reader = BufReader::new(&mut stream);
    assert_eq!(read_reply(&mut reader, false).body, b"ignored");
    assert_eq!(read_reply(&mut reader, false).body, b"Hello, World!");
}

#[test]
fn a_response_before_an_undrainable_body_says_the_connection_closes() {
    // 1 MiB declared, over the default `max_drain` (256 KiB): the server will not read it
    // away after the handler (which ignores it), so it closes, and the response says so.
    let server = server();
    let mut stream = server.connect();
    let head = format!(
        "POST /ignore HTTP/1.1\r\nHost: a\r\nContent-Length: {}\r\n\r\n",
        1 << 20
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(&[b'x'; 1024]).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut reader = BufReader::new(&mut stream);
    let reply = read_reply(&mut reader, false);
    assert_eq!(reply.body, b"ignored");
    assert_eq!(reply.header("connection"), Some("close"), "{reply:?}");
    // ... and it does close (end of stream or a reset, not a wait for the rest).
    let mut rest = Vec::new();
    let _ = reader.read_to_end(&mut rest);
    assert!(rest.is_empty());

    // A body within `max_drain` is read away: the connection stays, and says nothing.
    let mut stream = server.connect();
    stream
        .write_all(b"POST /ignore HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n0123456789")
        .unwrap();
    let reply = read_reply(&mut BufReader::new(&mut stream), false);
    assert_eq!(reply.header("connection"), None, "{reply:?}");

    // A large body the handler reads to its end before answering keeps the connection.
    let reply = one_mib_then_a_get(&server, "/upload");
    assert_eq!(reply.body, b"1048576 bytes");
    assert_eq!(reply.header("connection"), None, "{reply:?}");
}

/// POSTs 1 MiB to `path` (from a thread, as the answer may come first), then a GET on the
/// same connection; returns the POST's reply once the GET was answered on that connection.
fn one_mib_then_a_get(server: &TestServer, path: &str) -> support::Reply {
    let mut stream = server.connect();
    let mut writer = stream.try_clone().unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: a\r\nContent-Length: {}\r\n\r\n",
        1 << 20
    );
    let sender = std::thread::spawn(move || {
        writer.write_all(head.as_bytes()).unwrap();
        writer.write_all(&vec![b'x'; 1 << 20]).unwrap();
        writer
            .write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
            .unwrap();
    });
    let mut reader = BufReader::new(&mut stream);
    let reply = read_reply(&mut reader, false);
    assert_eq!(read_reply(&mut reader, false).body, b"Hello, World!");
    sender.join().unwrap();
    reply
}

#[test]
fn a_finished_response_does_not_wait_for_body_bytes() {
    let server = server();
    // The handler answers without reading a body the server then reads away (within
    // `max_drain`): the answer goes out before the body does not come.
    let mut stream = server.connect();
    stream
        .write_all(b"POST /ignore HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\nabc")
        .unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let reply = read_reply(&mut BufReader::new(&mut stream), false);
    assert_eq!(reply.body, b"ignored");

    // A pipelined request's answer does not wait for the next request's body either.
    let mut stream = server.connect();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\nPOST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n")
        .unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(&mut stream);
    assert_eq!(read_reply(&mut reader, false).body, b"Hello, World!");
    writer.write_all(b"hello").unwrap();
    assert_eq!(read_reply(&mut reader, false).body, b"hello");
}

#[test]
fn a_large_body_streamed_back_keeps_the_connection() {
    // The echo answers (chunked) while it reads a body over `max_drain`: it reads it to its
    // end, so the connection stays, and the response does not say otherwise.
    let server = server();
    let reply = one_mib_then_a_get(&server, "/echo");
    assert_eq!(reply.body.len(), 1 << 20);
    assert_eq!(reply.header("connection"), None, "{:?}", reply.headers);
}

#[test]
fn an_unknown_method_on_a_known_path_is_501_and_a_known_one_405() {
    let server = server();
    let mut stream = server.connect();
    stream
        .write_all(b"FOO / HTTP/1.1\r\nHost: a\r\n\r\nDELETE / HTTP/1.1\r\nHost: a\r\n\r\nFOO /nope HTTP/1.1\r\nHost: a\r\n\r\n")
        .unwrap();
    let mut reader = BufReader::new(&mut stream);
    // Neither RFC 9110's nor any route's: not implemented, and the connection stays.
    assert_eq!(read_reply(&mut reader, false).status, 501);
    let reply = read_reply(&mut reader, false);
    assert_eq!(reply.status, 405);
    assert_eq!(reply.header("allow"), Some("GET, HEAD"));
    // A path no route knows is the fallback's, whatever the method.
    assert_eq!(read_reply(&mut reader, false).status, 404);
}

#[test]
fn graceful_shutdown_lets_an_in_flight_request_finish() {
    let server = server();
    let mut stream = server.connect();
    stream
        .write_all(b"GET /slow HTTP/1.1\r\nHost: a\r\n\r\n")
        .unwrap();
    let mut idle = server.connect();
    std::thread::sleep(Duration::from_millis(50));
    let addr = server.addr;
    let stopper = std::thread::spawn(move || server.stop());
    let reply = read_reply(&mut BufReader::new(&mut stream), false);
    assert_eq!(reply.body, b"slow done");
    assert_eq!(reply.header("connection"), Some("close"));
    // The idle connection is closed without a response.
    let mut rest = Vec::new();
    idle.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
    stopper.join().unwrap().unwrap();
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "still accepting after shutdown"
    );
}

#[test]
fn shutdown_closes_idle_keep_alive_connections_at_once() {
    let server = server();
    // Served once each, so both are surely accepted and idle between requests.
    let mut idle: Vec<_> = (0..2).map(|_| server.connect()).collect();
    for stream in &mut idle {
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
            .unwrap();
        let reply = read_reply(&mut BufReader::new(&mut *stream), false);
        assert_eq!(reply.body, b"Hello, World!");
    }
    let started = std::time::Instant::now();
    let stopper = std::thread::spawn(move || server.stop());
    for mut stream in idle {
        let mut rest = Vec::new();
        stream.read_to_end(&mut rest).unwrap();
        assert!(rest.is_empty());
    }
    // Not after the idle timeout (120 s) nor the drain timeout (10 s): at once.
    let waited = started.elapsed();
    assert!(waited < Duration::from_secs(2), "closed after {waited:?}");
    stopper.join().unwrap().unwrap();
}

#[test]
fn options_asterisk_is_answered_for_the_server_as_a_whole() {
    let server = server();
    let response = server.exchange(b"OPTIONS * HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
    assert!(response.contains("Content-Length: 0\r\n"), "{response}");
    let allow = response
        .lines()
        .find_map(|line| line.strip_prefix("Allow: "))
        .unwrap_or_else(|| panic!("no Allow: {response}"));
    let methods: Vec<&str> = allow.split(", ").collect();
    for method in ["GET", "HEAD", "POST", "OPTIONS"] {
        assert!(methods.contains(&method), "{allow}");
    }
    // Each once, however many routes share it.
    let mut unique = methods.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), methods.len(), "{allow}");
    // A path still goes through the routes: no route for it, no answer for it.
    let response =
        server.exchange(b"OPTIONS /nope HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    assert!(response.starts_with("HTTP/1.1 404"), "{response}");
}

#[test]
fn conversions_to_and_from_the_http_crate() {
    let server = server();
    let response = server.exchange(
        b"PUT /via-http?q=1 HTTP/1.1\r\nHost: a\r\nX-Probe: hello\r\nConnection: close\r\n\r\n",
    );
    assert!(
        response.starts_with("HTTP/1.1 201 Created\r\n"),
        "{response}"
    );
    assert!(response.contains("x-method: PUT\r\n"), "{response}");
    assert!(response.contains("Content-Length: 5\r\n"), "{response}");
    assert!(response.ends_with("\r\n\r\nhello"), "{response}");
}
