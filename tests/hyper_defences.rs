//! hyper over ringhop bounds how long a peer holds a connection: the HTTP/2 preface wait has
//! the header timeout, an HTTP/2 connection without open streams gets a GOAWAY after the
//! idle timeout, and a peer that stops answering keep-alive pings is dropped.

#[path = "common/stall.rs"]
mod stall;
mod support;

use std::convert::Infallible;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use ringhop::http::{Config, KeepAlive};
use support::HyperTestServer;

async fn service(_req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(Response::new(Full::new(Bytes::from_static(b"ok"))))
}

/// Reads until the server closes; returns how long that took.
fn time_until_closed(stream: &mut std::net::TcpStream, started: Instant) -> Duration {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut sink = Vec::new();
    match stream.read_to_end(&mut sink) {
        Ok(_) => {}
        Err(err) if err.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(err) => panic!("the server kept the connection: {err}"),
    }
    started.elapsed()
}

/// A peer that sends the HTTP/2 preface and an empty SETTINGS frame, then nothing (no
/// request, no PING acknowledgement) while it reads everything: how long until the server
/// closes it.
fn silent_http2_peer_closed_after(server: &HyperTestServer) -> Duration {
    let mut stream = std::net::TcpStream::connect(server.addr).unwrap();
    let started = Instant::now();
    stream
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .unwrap();
    time_until_closed(&mut stream, started)
}

#[test]
fn a_partial_http2_preface_is_dropped_at_the_header_timeout() {
    let server = HyperTestServer::start(
        Config::default().header_timeout(Duration::from_secs(1)),
        1,
        || hyper::service::service_fn(service),
    );
    let mut stream = std::net::TcpStream::connect(server.addr).unwrap();
    let started = Instant::now();
    stream.write_all(b"PRI * HTTP/2.0\r\n").unwrap();
    let took = time_until_closed(&mut stream, started);
    assert!(took < Duration::from_secs(4), "closed after {took:?}");
    server.wait_until_no_connection();
}

#[test]
fn an_idle_http2_connection_gets_a_goaway_after_the_idle_timeout() {
    let server = HyperTestServer::start(
        Config::default().idle_timeout(Duration::from_secs(1)),
        1,
        || hyper::service::service_fn(service),
    );
    let addr = server.addr;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let took = rt.block_on(async {
        let (mut sender, conn) = support::http2_client(addr).await;
        let req = hyper::Request::get(format!("http://{addr}/"))
            .body(Full::new(Bytes::new()))
            .unwrap();
        let res = sender.send_request(req).await.unwrap();
        assert_eq!(res.into_body().collect().await.unwrap().to_bytes(), "ok");
        // Now idle: the server ends the connection gracefully.
        let idle_since = Instant::now();
        tokio::time::timeout(Duration::from_secs(5), conn)
            .await
            .expect("the idle HTTP/2 connection was kept")
            .unwrap()
            .unwrap();
        idle_since.elapsed()
    });
    assert!(took >= Duration::from_millis(900), "closed after {took:?}");
    server.wait_until_no_connection();
}

#[test]
fn a_peer_that_stops_answering_pings_is_dropped() {
    let config = Config::default()
        .idle_timeout(Duration::from_secs(60))
        .http2_keep_alive(Some(KeepAlive {
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
        }));
    let server = HyperTestServer::start(config, 1, || hyper::service::service_fn(service));
    // Pings go unanswered.
    let took = silent_http2_peer_closed_after(&server);
    assert!(took < Duration::from_secs(6), "closed after {took:?}");
    server.wait_until_no_connection();
}

#[test]
fn an_idle_http2_peer_that_never_acknowledges_the_goaway_ping_is_dropped() {
    // Without keep-alive pings, the idle rule alone must end the connection: h2's graceful
    // close sends GOAWAY and a PING and closes only once the PING is acknowledged, so a peer
    // that reads everything and answers nothing held it forever.
    let config = Config::default()
        .idle_timeout(Duration::from_secs(1))
        .drain_timeout(Duration::from_secs(1))
        .http2_keep_alive(None);
    let server = HyperTestServer::start(config, 1, || hyper::service::service_fn(service));
    let took = silent_http2_peer_closed_after(&server);
    // Idle 1 s, closing 1 s and the 2 s linger for the peer's FIN, each checked on the
    // watchdog's one-second tick.
    assert!(took < Duration::from_secs(8), "closed after {took:?}");
    server.wait_until_no_connection();
}

/// 64 MiB for any request to `/big`, else "ok".
async fn big_service(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let body = if req.uri().path() == "/big" {
        Bytes::from(vec![b'x'; 64 << 20])
    } else {
        Bytes::from_static(b"ok")
    };
    Ok(Response::new(Full::new(body)))
}

#[test]
fn an_http2_client_that_stops_reading_with_a_large_window_is_cut() {
    let config = Config::default().min_response_data_rate(Some(ringhop::http::MinDataRate {
        bytes_per_second: 240,
        grace: Duration::from_secs(1),
    }));
    let server = HyperTestServer::start(config, 1, || hyper::service::service_fn(big_service));
    let (addr, runtime) = (server.addr, server.runtime.clone());
    // A raw HTTP/2 client: preface, SETTINGS with a 2 GiB stream window, a connection
    // WINDOW_UPDATE, and `GET /big` (HPACK: :method GET, :scheme http, :path /big,
    // :authority a) — then it never reads the socket again.
    let mut client = std::net::TcpStream::connect(addr).unwrap();
    let mut frames = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    frames.extend_from_slice(b"\x00\x00\x06\x04\x00\x00\x00\x00\x00\x00\x04\x7f\xff\xff\xff");
    frames.extend_from_slice(b"\x00\x00\x04\x08\x00\x00\x00\x00\x00\x7f\xff\x00\x00");
    let block = b"\x82\x86\x44\x04/big\x41\x01a";
    frames.extend_from_slice(&[0, 0, block.len() as u8, 0x01, 0x05, 0, 0, 0, 1]);
    frames.extend_from_slice(block);
    client.write_all(&frames).unwrap();
    let started = Instant::now();
    // The windows are open, so the server's output piles up until the rate cuts it.
    loop {
        let stats = ringhop::http::stats(&runtime);
        if stats.total.closed_send_rate == 1 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(8),
            "the connection of an HTTP/2 client that stopped reading was kept: {stats:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(client);
    server.wait_until_no_connection();
    server.stop().unwrap();
}

/// Reads the whole upload; a body below the minimum rate answers 408 (the service sees the
/// rate's error as a body error).
async fn upload(
    req: Request<ringhop::http::hyper::RequestBody>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(match req.into_body().collect().await {
        Ok(body) => Response::new(Full::new(Bytes::from(body.to_bytes().len().to_string()))),
        Err(_) => {
            let mut response = Response::new(Full::new(Bytes::from_static(b"too slow")));
            *response.status_mut() = hyper::StatusCode::REQUEST_TIMEOUT;
            response
        }
    })
}

#[test]
fn hyper_request_bodies_below_the_minimum_rate_are_cut() {
    let config = Config::default().min_request_body_data_rate(Some(ringhop::http::MinDataRate {
        bytes_per_second: 240,
        grace: Duration::from_secs(1),
    }));
    let server = HyperTestServer::start(config, 1, || hyper::service::service_fn(upload));
    let addr = server.addr;
    let started = Instant::now();
    // 20 clients announce 1000 bytes and send one every 200 ms (5 B/s).
    let trickles: Vec<_> = (0..20)
        .map(|_| {
            std::thread::spawn(move || {
                let mut stream = std::net::TcpStream::connect(addr).unwrap();
                stream
                    .write_all(b"POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\n")
                    .unwrap();
                stream
                    .set_read_timeout(Some(Duration::from_millis(200)))
                    .unwrap();
                let mut answer = Vec::new();
                let mut buf = [0u8; 512];
                for _ in 0..50 {
                    if stream.write_all(b"x").is_err() {
                        break;
                    }
                    match stream.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => answer.extend_from_slice(&buf[..n]),
                        Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {}
                        Err(_) => break,
                    }
                    if answer.ends_with(b"too slow") {
                        break;
                    }
                }
                (
                    String::from_utf8_lossy(&answer).into_owned(),
                    started.elapsed(),
                )
            })
        })
        .collect();
    // Meanwhile a normal client uploads 64 KiB at full speed, and is not cut.
    std::thread::sleep(Duration::from_millis(1200));
    let body = vec![b'y'; 64 * 1024];
    let mut normal = std::net::TcpStream::connect(addr).unwrap();
    let mut request = format!(
        "POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(&body);
    let upload_started = Instant::now();
    normal.write_all(&request).unwrap();
    let mut answer = String::new();
    normal.read_to_string(&mut answer).unwrap();
    assert!(answer.ends_with("65536"), "{answer}");
    let normal_took = upload_started.elapsed();
    for trickle in trickles {
        let (answer, took) = trickle.join().unwrap();
        assert!(
            answer.starts_with("HTTP/1.1 408") && answer.ends_with("too slow"),
            "a 5 B/s body was not cut: {answer:?}"
        );
        assert!(took < Duration::from_secs(4), "cut only after {took:?}");
    }
    eprintln!(
        "20 bodies at 5 B/s answered 408 within {:?}; a 64 KiB upload meanwhile took {normal_took:?}",
        started.elapsed()
    );
    let stats = ringhop::http::stats(&server.runtime);
    assert_eq!(stats.total.closed_body_rate, 20, "{stats:?}");
    server.wait_until_no_connection();
    server.stop().unwrap();
}

/// A burst does not pay for a stall after it: the rate is judged in windows of the grace
/// period. (With one running average from the body's start, 100 kB at 240 B/s held the
/// connection for 7 minutes.)
#[test]
fn a_hyper_request_body_that_stalls_after_a_burst_is_cut_within_two_grace_periods() {
    let config = Config::default().min_request_body_data_rate(Some(ringhop::http::MinDataRate {
        bytes_per_second: 240,
        grace: Duration::from_secs(1),
    }));
    let server = HyperTestServer::start(config, 1, || hyper::service::service_fn(upload));
    let (answer, took) = stall::burst_then_stall(server.addr);
    assert!(
        answer.starts_with("HTTP/1.1 408") && answer.ends_with("too slow"),
        "after {took:?}: {answer:?}"
    );
    assert!(took < Duration::from_secs(4), "took {took:?}");
    let stats = ringhop::http::stats(&server.runtime);
    assert_eq!(stats.total.closed_body_rate, 1, "{stats:?}");
}

#[test]
fn requests_hyper_does_not_check_are_refused_before_the_service() {
    let server =
        HyperTestServer::start(Config::default(), 1, || hyper::service::service_fn(service));
    let answer = |request: &[u8]| {
        let mut stream = std::net::TcpStream::connect(server.addr).unwrap();
        stream.write_all(request).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut response = Vec::new();
        let _ = stream.read_to_end(&mut response);
        String::from_utf8_lossy(&response).into_owned()
    };
    for bad in [
        &b"GET / HTTP/1.1\r\n\r\n"[..],
        b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n",
    ] {
        let response = answer(bad);
        assert!(
            response.starts_with("HTTP/1.1 400 "),
            "{:?}: {response}",
            String::from_utf8_lossy(bad)
        );
        assert!(response.contains("connection: close"), "{response}");
        assert!(!response.contains("ok"), "the service answered: {response}");
    }
    // The same, after a valid request on the same connection: a Host the connection already
    // found valid does not make a repeated, doubled or changed one pass.
    for bad in [
        &b"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n"[..],
        b"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a:8x\r\n\r\n",
        b"GET / HTTP/1.1\r\n\r\n",
    ] {
        let mut requests = b"GET / HTTP/1.1\r\nHost: a:8\r\n\r\n".repeat(2);
        requests.extend_from_slice(bad);
        let response = answer(&requests);
        let statuses: Vec<&str> = response
            .match_indices("HTTP/1.1 ")
            .map(|(at, _)| &response[at + 9..at + 12])
            .collect();
        assert_eq!(
            statuses,
            ["200", "200", "400"],
            "{:?}: {response}",
            String::from_utf8_lossy(bad)
        );
    }
    // A coding hyper would hand over still encoded: not implemented.
    let response =
        answer(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n");
    assert!(response.starts_with("HTTP/1.1 501 "), "{response}");
    // The limits of `Config`, as the native server answers them (hyper on its own served
    // all three: its only bound was its 400 KB read buffer).
    let long_target = format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", "a".repeat(9000));
    let big_field = format!(
        "GET / HTTP/1.1\r\nHost: a\r\nX-Big: {}\r\n\r\n",
        "b".repeat(40_000)
    );
    let many_fields = format!(
        "GET / HTTP/1.1\r\nHost: a\r\n{}\r\n",
        "X-F: 1\r\n".repeat(100)
    );
    for (request, status) in [
        (long_target.into_bytes(), "414"),
        (many_fields.into_bytes(), "431"),
        (big_field.into_bytes(), "431"),
        (
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 17000000\r\n\r\n".to_vec(),
            "413",
        ),
    ] {
        let response = answer(&request);
        assert!(
            response.starts_with(&format!("HTTP/1.1 {status} ")),
            "expected {status}: {response}"
        );
        assert!(
            !response.ends_with("ok"),
            "the service answered: {response}"
        );
    }
    // At the limits, served.
    let at_line_limit = format!(
        "GET /{} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
        "a".repeat(8192 - 4 - 1 - 10)
    );
    assert!(answer(at_line_limit.as_bytes()).ends_with("ok"));
    for good in [
        &b"GET / HTTP/1.1\r\nHost: a:80\r\nConnection: close\r\n\r\n"[..],
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n2\r\nhi\r\n0\r\n\r\n",
        b"GET / HTTP/1.0\r\n\r\n",
    ] {
        let response = answer(good);
        assert!(response.starts_with("HTTP/1."), "{response}");
        assert!(response.contains(" 200 OK"), "{response}");
        assert!(response.ends_with("ok"), "{response}");
    }
}

#[test]
fn hyper_timeouts_at_their_maximum_mean_never() {
    // hyper adds its header-read and keep-alive timeouts to an `Instant` itself, so
    // `Duration::MAX` reached it as a panic in its first head read (HTTP/1) or ping
    // schedule (HTTP/2), and the body rate's alarm overflowed the same way.
    let never = Duration::MAX;
    let config = Config::default()
        .header_timeout(never)
        .idle_timeout(never)
        .http2_keep_alive(Some(KeepAlive {
            interval: never,
            timeout: never,
        }))
        .min_request_body_data_rate(Some(ringhop::http::MinDataRate {
            bytes_per_second: 1,
            grace: never,
        }));
    let server = HyperTestServer::start(config, 1, || hyper::service::service_fn(upload));
    let addr = server.addr;
    // HTTP/1.1, the body in two writes: the body read waits in between.
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .write_all(b"POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\npi")
        .unwrap();
    std::thread::sleep(Duration::from_millis(50));
    stream.write_all(b"ng").unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 512];
    while !answer.ends_with(b"\r\n\r\n4") {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
        }
    }
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.starts_with("HTTP/1.1 200") && answer.ends_with("\r\n\r\n4"),
        "{answer:?}"
    );
    drop(stream);
    // HTTP/2 with keep-alive pings every `Duration::MAX`.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let body = rt.block_on(async {
        let (mut sender, _conn) = support::http2_client(addr).await;
        let req = hyper::Request::post(format!("http://{addr}/upload"))
            .body(Full::new(Bytes::from_static(b"hello")))
            .unwrap();
        let res = tokio::time::timeout(Duration::from_secs(5), sender.send_request(req))
            .await
            .expect("an HTTP/2 answer")
            .unwrap();
        res.into_body().collect().await.unwrap().to_bytes()
    });
    assert_eq!(body, "5");
    // The client's connection closes with its runtime, so the drain does not wait for it.
    drop(rt);
    server.stop().unwrap();
}
