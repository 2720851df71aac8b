//! hyper over ringhop loses nothing either: `Full` bodies of 8 and 64 MiB arrive byte for
//! byte, and connections hyper ends are closed after the linger although the peer keeps its
//! socket. The tests run one at a time, because one of them counts this process's fds.

mod support;

use std::convert::Infallible;
use std::io::{Read, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use ringhop::http::{Config, Linger};
use support::HyperTestServer;

static SERIAL: Mutex<()> = Mutex::new(());

fn pattern(i: usize) -> u8 {
    (i % 251) as u8
}

/// `/big?<MiB>`: a `Full` body of that many MiB; anything else: "ok".
async fn service(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let body = match req.uri().path() {
        "/big" => {
            let mib: usize = req.uri().query().and_then(|q| q.parse().ok()).unwrap_or(1);
            Bytes::from((0..mib << 20).map(pattern).collect::<Vec<u8>>())
        }
        _ => Bytes::from_static(b"ok"),
    };
    Ok(Response::new(Full::new(body)))
}

#[test]
fn full_bodies_of_8_and_64_mib_arrive_byte_for_byte() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let server =
        HyperTestServer::start(Config::default(), 1, || hyper::service::service_fn(service));
    let addr = server.addr;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .unwrap();
        tokio::spawn(conn);
        for mib in [8usize, 64] {
            let req = hyper::Request::get(format!("/big?{mib}"))
                .header("host", "a")
                .body(Full::new(Bytes::new()))
                .unwrap();
            let res = sender.send_request(req).await.unwrap();
            let body = res.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(body.len(), mib << 20, "{mib} MiB");
            if let Some(at) = (0..body.len()).find(|&i| body[i] != pattern(i)) {
                panic!("{mib} MiB body differs at byte {at}");
            }
        }
    });
}

fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[test]
fn connections_hyper_ends_are_closed_although_the_peer_keeps_its_socket() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let server = HyperTestServer::start(
        Config::default().linger(Linger {
            timeout: Duration::from_millis(300),
            max_bytes: 64 * 1024,
        }),
        1,
        || hyper::service::service_fn(service),
    );
    let exchange = |request: &[u8]| {
        let mut stream = std::net::TcpStream::connect(server.addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream.write_all(request).unwrap();
        let mut out = Vec::new();
        stream.read_to_end(&mut out).unwrap();
        (stream, String::from_utf8_lossy(&out).into_owned())
    };
    drop(exchange(
        b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    ));
    std::thread::sleep(Duration::from_millis(500));
    let before = fd_count();
    let mut clients = Vec::new();
    for i in 0..40 {
        let request: &[u8] = if i % 2 == 0 {
            b"BAD\r\n\r\n"
        } else {
            b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
        };
        // The whole answer arrives, then hyper's FIN; the client keeps its socket.
        let (stream, text) = exchange(request);
        let expected = if i % 2 == 0 {
            "HTTP/1.1 400 "
        } else {
            "HTTP/1.1 200 "
        };
        assert!(text.starts_with(expected), "client {i}: {text}");
        clients.push(stream);
    }
    let deadline = Instant::now() + Duration::from_secs(3);
    while fd_count() != before + clients.len() {
        assert!(
            Instant::now() < deadline,
            "{} fds open, expected {} (only the clients' own)",
            fd_count(),
            before + clients.len()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends `parts` with a pause between them, then half-closes if asked, and returns all the
/// server sent until it closed.
fn exchange_in_parts(addr: std::net::SocketAddr, parts: &[&[u8]], half_close: bool) -> String {
    let mut client = std::net::TcpStream::connect(addr).unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            std::thread::sleep(Duration::from_millis(50));
        }
        client.write_all(part).unwrap();
    }
    if half_close {
        client.shutdown(std::net::Shutdown::Write).unwrap();
    }
    let mut response = Vec::new();
    let _ = client.read_to_end(&mut response);
    String::from_utf8_lossy(&response).into_owned()
}

#[test]
fn a_request_whose_first_segment_is_a_prefix_of_the_h2_preface_is_answered() {
    // `P` alone could start `PRI * HTTP/2.0` (the h2 preface) or `POST`: the transport waits
    // for the next bytes, then hands hyper everything.
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let server =
        HyperTestServer::start(Config::default(), 1, || hyper::service::service_fn(service));
    for split in [1, 2, 5] {
        let request =
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi";
        let (first, rest) = request.split_at(split);
        let response = exchange_in_parts(server.addr, &[first, rest], false);
        assert!(
            response.starts_with("HTTP/1.1 200 OK\r\n") && response.ends_with("\r\n\r\nok"),
            "split after {split} bytes: {response:?}"
        );
    }
}

#[test]
fn a_client_that_half_closes_after_a_chunked_request_gets_the_whole_response() {
    // The response streams the request body back, so the client's FIN arrives while it is
    // in progress.
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let server = HyperTestServer::start(Config::default(), 1, || {
        hyper::service::service_fn(|req: Request<Incoming>| async move {
            Ok::<_, Infallible>(Response::new(req.into_body()))
        })
    });
    for round in 0..10 {
        let request = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
        let response = exchange_in_parts(server.addr, &[request], true);
        assert!(
            response.starts_with("HTTP/1.1 200 OK\r\n")
                && response.ends_with("\r\n\r\n5\r\nhello\r\n0\r\n\r\n"),
            "round {round}: {response:?}"
        );
    }
}
