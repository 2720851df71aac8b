//! Nothing lost, nothing corrupted: the defects real clients found (issue "HTTP: nothing
//! lost, nothing corrupted"), each over real sockets on 127.0.0.1.

mod support;

use std::io::{BufReader, ErrorKind, Read, Write};
use std::time::{Duration, Instant};

use ringhop_http::{Config, Request, Response, Router, Status};
use support::{read_reply, TestServer};

/// `header()` first, `status()` after it.
async fn created(_req: &mut Request<'_>, res: &mut Response<'_>) -> std::io::Result<()> {
    res.header("X-First", "1").status(Status(201)).body(b"made");
    Ok(())
}

/// Fails after setting a header, before any body.
async fn fails_after_header(_req: &mut Request<'_>, res: &mut Response<'_>) -> std::io::Result<()> {
    res.header("X-Half", "set");
    Err(std::io::Error::other("the handler gave up"))
}

/// Streams a little, then fails: the response is cut short.
async fn cut(_req: &mut Request<'_>, res: &mut Response<'_>) -> std::io::Result<()> {
    res.write_chunk(b"partial").await?;
    Err(std::io::Error::other("the handler gave up mid-body"))
}

/// Answers completely, then fails: the answer must still arrive whole.
async fn done_then_fails(_req: &mut Request<'_>, res: &mut Response<'_>) -> std::io::Result<()> {
    res.body(b"complete");
    Err(std::io::Error::other(
        "the handler failed after its response",
    ))
}

/// Starts its (streamed) response before it reads the body.
async fn answer_first(req: &mut Request<'_>, res: &mut Response<'_>) -> std::io::Result<()> {
    res.start_stream();
    while let Some(chunk) = req.body().chunk().await? {
        res.write_chunk(chunk).await?;
    }
    res.finish();
    Ok(())
}

fn router() -> impl ringhop_http::Handler + Clone + Send + 'static {
    Router::new()
        .get("/plaintext", support::app::plaintext)
        .post("/echo", support::app::echo)
        .get("/created", created)
        .get("/fails", fails_after_header)
        .get("/cut", cut)
        .get("/big", support::app::big)
        .get("/slow", support::app::slow)
        .get("/done-then-fails", done_then_fails)
        .post("/answer-first", answer_first)
}

fn server(config: Config) -> TestServer {
    TestServer::start(config, router())
}

#[test]
fn interim_100_continue_precedes_a_head_whose_headers_were_set_first() {
    let server = server(Config::default());
    let mut stream = server.connect();
    stream
        .write_all(
            b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Type: a/b\r\nExpect: 100-continue\r\n\
              Content-Length: 4\r\n\r\n",
        )
        .unwrap();
    let mut interim = [0u8; 25];
    stream.read_exact(&mut interim).unwrap();
    assert_eq!(
        &interim,
        b"HTTP/1.1 100 Continue\r\n\r\n",
        "got {:?}",
        String::from_utf8_lossy(&interim)
    );
    stream.write_all(b"ping").unwrap();
    let reply = read_reply(&mut BufReader::new(&mut stream), false);
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("a/b"));
    assert_eq!(reply.body, b"ping");
}

#[test]
fn status_set_after_a_header_takes_effect() {
    let server = server(Config::default());
    let response =
        server.exchange(b"GET /created HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    assert!(
        response.starts_with("HTTP/1.1 201 Created\r\n"),
        "{response}"
    );
    assert!(response.contains("\r\nX-First: 1\r\n"), "{response}");
    assert!(response.ends_with("\r\n\r\nmade"), "{response}");
}

#[test]
fn a_handler_failing_after_header_is_answered_with_a_clean_500() {
    let server = server(Config::default());
    let response = server.exchange(b"GET /fails HTTP/1.1\r\nHost: a\r\n\r\n");
    assert!(
        response.starts_with("HTTP/1.1 500 Internal Server Error\r\n"),
        "{response}"
    );
    assert!(
        !response.contains("X-Half"),
        "a header of the failed response leaked: {response}"
    );
    assert_eq!(response.matches("HTTP/1.1").count(), 1, "{response}");
    assert!(
        response.ends_with("\r\n\r\nInternal Server Error"),
        "{response}"
    );
}

fn fetch_big(server: &TestServer, mib: usize) {
    let mut stream = server.connect();
    write!(stream, "GET /big?{mib} HTTP/1.1\r\nHost: a\r\n\r\n").unwrap();
    let reply = read_reply(&mut BufReader::new(&mut stream), false);
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body.len(), mib << 20, "{mib} MiB body");
    if let Some(at) = (0..reply.body.len()).find(|&i| reply.body[i] != support::app::pattern(i)) {
        panic!("{mib} MiB body differs at byte {at}");
    }
}

#[test]
fn response_bodies_of_8_and_64_mib_arrive_byte_for_byte() {
    let server = server(Config::default());
    fetch_big(&server, 8);
    fetch_big(&server, 64);
}

#[test]
fn the_linger_keeps_an_error_answer_alive_while_the_client_still_sends() {
    let config = Config::default().max_body(1024);
    let server = server(config);
    let mut stream = server.connect();
    // Declared too large: answered 413 before the body, which the client sends anyway.
    stream
        .write_all(b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 40000\r\n\r\n")
        .unwrap();
    std::thread::sleep(Duration::from_millis(50));
    stream.write_all(&[b'x'; 40_000]).unwrap();
    let mut out = Vec::new();
    stream.read_to_end(&mut out).unwrap();
    let text = String::from_utf8_lossy(&out);
    assert!(text.starts_with("HTTP/1.1 413 "), "{text}");
}

#[test]
fn an_upload_answered_200_before_it_is_read_is_not_reset_while_it_is_sent() {
    // curl goes on sending after a 2xx (it stops only on an error status): the server, which
    // closes after such an answer (10 MiB is over `max_drain`), reads the rest away while
    // the client sends it, instead of resetting the connection under the client's writes.
    let server = server(Config::default());
    let mut stream = server.connect();
    let mut writer = stream.try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        let len = 10 << 20;
        let head = format!("GET /plaintext HTTP/1.1\r\nHost: a\r\nContent-Length: {len}\r\n\r\n");
        writer.write_all(head.as_bytes())?;
        writer.write_all(&vec![b'x'; len])
    });
    let reply = read_reply(&mut BufReader::new(&mut stream), false);
    assert_eq!(reply.body, b"Hello, World!");
    assert_eq!(reply.header("connection"), Some("close"));
    let sent = sender.join().unwrap();
    assert!(sent.is_ok(), "the upload was cut: {sent:?}");
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
}

#[test]
fn chunk_data_not_followed_by_crlf_is_answered_400() {
    let server = server(Config::default());
    let response = server.exchange(
        b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n",
    );
    assert!(response.starts_with("HTTP/1.1 400 "), "{response}");
    assert_eq!(response.matches("HTTP/1.1").count(), 1, "{response}");

    // A chunk that straddles pipe segments (4 KiB), bad CRLF after it.
    let mut request =
        b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2710\r\n".to_vec();
    request.extend_from_slice(&[b'a'; 10_000]);
    request.extend_from_slice(b"XX0\r\n\r\n");
    let response = server.exchange(&request);
    assert!(response.starts_with("HTTP/1.1 400 "), "{}", &response[..40]);
}

#[test]
fn chunks_that_straddle_segments_are_echoed_whole() {
    let server = server(Config::default());
    let mut stream = server.connect();
    let mut request =
        b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    let mut expected = Vec::new();
    for (i, size) in [6000usize, 1, 4095, 9000].into_iter().enumerate() {
        let data = vec![b'a' + i as u8; size];
        request.extend_from_slice(format!("{size:x}\r\n").as_bytes());
        request.extend_from_slice(&data);
        request.extend_from_slice(b"\r\n");
        expected.extend_from_slice(&data);
    }
    request.extend_from_slice(b"0\r\n\r\n");
    stream.write_all(&request).unwrap();
    let reply = read_reply(&mut BufReader::new(&mut stream), false);
    assert_eq!(reply.status, 200);
    assert!(reply.body == expected, "echoed body differs");
}

#[test]
fn a_cut_close_delimited_body_ends_with_a_reset() {
    let server = server(Config::default());
    let mut stream = server.connect();
    stream.write_all(b"GET /cut HTTP/1.0\r\n\r\n").unwrap();
    let mut out = Vec::new();
    let result = stream.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out);
    assert!(
        matches!(&result, Err(err) if err.kind() == ErrorKind::ConnectionReset),
        "a cut HTTP/1.0 body ended with {result:?} after {text:?}: it looks complete"
    );
}

#[test]
fn shutdown_with_half_a_head_buffered_does_not_stall_the_reactor() {
    let config = Config::default().header_timeout(Duration::from_secs(3));
    let server = server(config);
    let mut half = server.connect();
    half.write_all(b"GET /plaintext HTTP/1.1\r\nHo").unwrap();
    let mut slow = server.connect();
    slow.write_all(b"GET /slow HTTP/1.1\r\nHost: a\r\n\r\n")
        .unwrap();
    // Let both requests reach the server, then shut down while the head is half there.
    std::thread::sleep(Duration::from_millis(50));
    let started = Instant::now();
    ringhop_http::trigger_shutdown(&server.runtime);
    let reply = read_reply(&mut BufReader::new(&mut slow), false);
    let waited = started.elapsed();
    assert_eq!(reply.body, b"slow done");
    assert!(
        waited < Duration::from_millis(1500),
        "an in-flight request took {waited:?} after shutdown (the reactor was blocked)"
    );
    // The half head still gets its header timeout: finishing it is answered.
    half.write_all(b"st: a\r\n\r\n").unwrap();
    let reply = read_reply(&mut BufReader::new(&mut half), false);
    assert_eq!(reply.body, b"Hello, World!");
    assert_eq!(reply.header("connection"), Some("close"));
}

#[test]
fn a_handler_failing_after_a_complete_response_does_not_reset_it() {
    let server = server(Config::default());
    let mut stream = server.connect();
    stream
        .write_all(b"GET /done-then-fails HTTP/1.1\r\nHost: a\r\n\r\n")
        .unwrap();
    let mut out = Vec::new();
    let result = stream.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out);
    assert!(result.is_ok(), "{result:?} after {text:?}");
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(text.ends_with("\r\n\r\ncomplete"), "{text}");
}

#[test]
fn a_final_head_sent_before_the_body_is_read_reaches_an_expecting_client() {
    let server = server(Config::default());
    let mut stream = server.connect();
    stream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    stream
        .write_all(
            b"POST /answer-first HTTP/1.1\r\nHost: a\r\nConnection: close\r\nExpect: 100-continue\r\n\
              Content-Length: 4\r\n\r\n",
        )
        .unwrap();
    // No 100: the final head instead, without waiting for a body the client holds back.
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        stream
            .read_exact(&mut byte)
            .expect("the final head must arrive while the client waits");
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(head.contains("Transfer-Encoding: chunked"), "{head}");
    stream.write_all(b"ping").unwrap();
    let mut rest = Vec::new();
    let _ = stream.read_to_end(&mut rest);
    assert_eq!(String::from_utf8_lossy(&rest), "4\r\nping\r\n0\r\n\r\n");
}
