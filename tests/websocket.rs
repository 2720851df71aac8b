//! WebSockets over hyper's upgrades on ringhop: `hyper_app`'s `/ws` echoes text and binary
//! messages over ws:// and wss:// (tokio-tungstenite as the client), the echo runs on the
//! connection's reactor (no poll off it), and the upgraded connections are counted and end.

mod support;

#[allow(dead_code)]
#[path = "../examples/hyper_app.rs"]
mod hyper_app;

#[path = "common/tls.rs"]
mod tls;

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use ringhop::http::hyper::RequestBody;
use ringhop::http::tls::TlsAcceptor;
use ringhop::http::Config;
use support::HyperTestServer;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::tungstenite::Message;

/// Opens `/ws` over `io`, echoes a text, a binary (300 KiB, several frames' worth) and a
/// second text message, then closes.
async fn echo_session<S: AsyncRead + AsyncWrite + Unpin>(url: &str, io: S) {
    let (mut ws, response) = tokio_tungstenite::client_async(url, io).await.unwrap();
    assert_eq!(response.status(), 101);
    let binary: Vec<u8> = (0..300 * 1024).map(|i| (i % 253) as u8).collect();
    let messages = [
        Message::text("hello over ringhop"),
        Message::binary(binary),
        Message::text("ünïcödé ✓"),
    ];
    for message in messages {
        ws.send(message.clone()).await.unwrap();
        let echoed = ws.next().await.unwrap().unwrap();
        assert_eq!(echoed, message);
    }
    ws.close(None).await.unwrap();
    // The server answers the close (RFC 6455 §5.5.1: its Close frame, written as the echo
    // ends, goes out although nothing flushes it after), then the stream ends cleanly.
    let mut answered = false;
    loop {
        match ws.next().await {
            Some(Ok(Message::Close(_))) => answered = true,
            Some(Ok(other)) => panic!("{url}: unexpected message after Close: {other:?}"),
            Some(Err(err)) => panic!("{url}: the close handshake failed: {err}"),
            None => break,
        }
    }
    assert!(answered, "{url}: the server did not answer the Close frame");
}

fn off_reactor_polls(server: &HyperTestServer) -> u64 {
    server
        .runtime
        .handles()
        .iter()
        .map(|h| h.stats().off_reactor_polls)
        .sum()
}

fn wait_for_no_upgraded(before: u64) {
    let started = Instant::now();
    while ringhop::http::upgrade_stats().open != before {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "upgraded connections stay open: {:?}",
            ringhop::http::upgrade_stats()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn websocket_echo_over_ws_and_wss() {
    let before = ringhop::http::upgrade_stats();
    let plain = HyperTestServer::start(Config::default(), 1, || {
        hyper::service::service_fn(hyper_app::app::<RequestBody>)
    });
    let (cert_pem, key_pem, cert) = tls::self_signed("ws");
    let acceptor = TlsAcceptor::from_pem_files(&cert_pem, &key_pem).unwrap();
    let secure = HyperTestServer::start_tls(Config::default(), 1, acceptor, || {
        hyper::service::service_fn(hyper_app::app::<RequestBody>)
    });
    let (plain_addr, secure_addr) = (plain.addr, secure.addr);
    support::tokio_rt().block_on(async {
        let tcp = tokio::net::TcpStream::connect(plain_addr).await.unwrap();
        echo_session(&format!("ws://{plain_addr}/ws"), tcp).await;
        // Over TLS, HTTP/1.1 by ALPN (WebSockets upgrade HTTP/1.1 connections).
        let stream = tls::connect(secure_addr, tls::client_config(&cert, &[b"http/1.1"]))
            .await
            .unwrap();
        echo_session(
            &format!("wss://localhost:{}/ws", secure_addr.port()),
            stream,
        )
        .await;
        // Two at once on one reactor.
        let a = tokio::net::TcpStream::connect(plain_addr).await.unwrap();
        let b = tokio::net::TcpStream::connect(plain_addr).await.unwrap();
        let url = format!("ws://{plain_addr}/ws");
        tokio::join!(echo_session(&url, a), echo_session(&url, b));

        // Not a WebSocket handshake: 400, no upgrade.
        let tcp = tokio::net::TcpStream::connect(plain_addr).await.unwrap();
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp))
                .await
                .unwrap();
        tokio::spawn(conn);
        let request = hyper::Request::get("/ws")
            .header("host", "x")
            .body(http_body_util::Empty::<bytes::Bytes>::new())
            .unwrap();
        let response = sender.send_request(request).await.unwrap();
        assert_eq!(response.status(), 400);
    });
    let after = ringhop::http::upgrade_stats();
    assert_eq!(after.upgraded, before.upgraded + 4, "{after:?}");
    wait_for_no_upgraded(before.open);
    assert_eq!(off_reactor_polls(&plain), 0);
    assert_eq!(off_reactor_polls(&secure), 0);
    plain.wait_until_no_connection();
    secure.wait_until_no_connection();
}

#[test]
fn a_websocket_handshake_over_http_1_0_is_refused() {
    use std::io::{Read, Write};
    let server = HyperTestServer::start(Config::default(), 1, || {
        hyper::service::service_fn(hyper_app::app::<RequestBody>)
    });
    let mut client = std::net::TcpStream::connect(server.addr).unwrap();
    client
        .write_all(
            b"GET /ws HTTP/1.0\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
              Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
        )
        .unwrap();
    let mut response = Vec::new();
    client.read_to_end(&mut response).unwrap();
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.0 426 "), "{response}");
}

#[test]
fn an_upgraded_connection_counts_against_max_connections_until_it_closes() {
    // hyper hands an upgraded connection's I/O to the service's task and its own
    // connection future ends: the cap used to stop counting it there, so WebSockets were
    // never bounded by `max_connections`.
    let server = HyperTestServer::start(Config::default().max_connections(Some(1)), 1, || {
        hyper::service::service_fn(hyper_app::app::<RequestBody>)
    });
    let addr = server.addr;
    support::tokio_rt().block_on(async {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (mut ws, response) = tokio_tungstenite::client_async(format!("ws://{addr}/ws"), tcp)
            .await
            .unwrap();
        assert_eq!(response.status(), 101);
        ws.send(Message::text("open")).await.unwrap();
        assert_eq!(ws.next().await.unwrap().unwrap(), Message::text("open"));
        // The WebSocket is open: a second connection waits in the backlog.
        let mut second = tokio::net::TcpStream::connect(addr).await.unwrap();
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        second
            .write_all(b"GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 64];
        let waited = tokio::time::timeout(Duration::from_millis(500), second.read(&mut buf)).await;
        assert!(
            waited.is_err(),
            "served beside an open WebSocket at a cap of 1"
        );
        // The WebSocket closes: the second is served.
        ws.close(None).await.unwrap();
        while ws.next().await.is_some() {}
        drop(ws);
        let n = tokio::time::timeout(Duration::from_secs(5), second.read(&mut buf))
            .await
            .expect("served once the WebSocket closed")
            .unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"), "{:?}", &buf[..n]);
    });
    server.stop().unwrap();
}
