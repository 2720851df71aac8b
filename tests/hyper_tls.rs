//! hyper over TLS on ringhop (`HyperServer::tls`): curl and hyper's clients over rustls,
//! HTTP/2 and HTTP/1.1 chosen by ALPN, keep-alive, 8 MiB both ways, a client that leaves
//! mid-body, and hostile handshakes (plaintext on the TLS port, a truncated ClientHello, a
//! silent client) — after which the server still serves and every counter is back to zero.

mod support;

#[allow(dead_code)]
#[path = "../examples/hyper_app.rs"]
mod hyper_app;

#[path = "common/tls.rs"]
mod tls;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use ringhop::http::hyper::RequestBody;
use ringhop::http::tls::TlsAcceptor;
use ringhop::http::Config;
use support::HyperTestServer;
use tokio::io::AsyncWriteExt;

fn curl(args: &[&str]) -> Vec<u8> {
    let output = Command::new("curl")
        .args(["-s", "--max-time", "20"])
        .args(args)
        .output()
        .expect("curl is installed (.ci/run installs it)");
    assert!(output.status.success(), "curl {args:?}: {output:?}");
    output.stdout
}

fn tokio_rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The tests count TLS connections process-wide: one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn hyper_over_tls_with_real_clients_and_hostile_handshakes() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (cert_pem, key_pem, cert) = tls::self_signed("hyper");
    let acceptor = TlsAcceptor::from_pem_files(&cert_pem, &key_pem)
        .unwrap()
        .handshake_timeout(Duration::from_secs(1));
    let before = ringhop::http::tls::stats();
    let server = HyperTestServer::start_tls(Config::default(), 2, acceptor, || {
        hyper::service::service_fn(hyper_app::app::<RequestBody>)
    });
    let port = server.addr.port();
    let base = format!("https://localhost:{port}");
    let resolve = format!("localhost:{port}:127.0.0.1");
    let cacert = cert_pem.to_str().unwrap();
    let curl_tls = |extra: &[&str]| {
        let mut args = vec!["--cacert", cacert, "--resolve", &resolve];
        args.extend_from_slice(extra);
        curl(&args)
    };

    // curl: HTTP/2 by ALPN (no prior knowledge needed), HTTP/1.1 when asked for it.
    assert_eq!(curl_tls(&[&format!("{base}/plaintext")]), b"Hello, World!");
    let version = |flag: &str| {
        curl_tls(&[
            flag,
            "-o",
            "/dev/null",
            "-w",
            "%{http_version}",
            &format!("{base}/json"),
        ])
    };
    assert_eq!(version("--http2"), b"2");
    assert_eq!(version("--http1.1"), b"1.1");
    // `--http1.0` offers only `http/1.0` by ALPN: served (as nginx does), not refused with
    // `no_application_protocol`.
    assert_eq!(
        curl_tls(&["--http1.0", &format!("{base}/plaintext")]),
        b"Hello, World!"
    );
    assert_eq!(
        curl_tls(&["--data-binary", "tls body", &format!("{base}/echo")]),
        b"tls body"
    );

    let big: Bytes = (0..8u32 << 20)
        .map(|i| (i % 251) as u8)
        .collect::<Vec<u8>>()
        .into();
    let addr = server.addr;
    tokio_rt().block_on(async {
        // hyper's HTTP/2 client, h2 negotiated by ALPN: the version is HTTP/2, and an 8 MiB
        // echo comes back intact.
        let stream = tls::connect(addr, tls::client_config(&cert, &[b"h2", b"http/1.1"]))
            .await
            .unwrap();
        assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
        let (mut sender, conn) = hyper::client::conn::http2::handshake(
            hyper_util::rt::TokioExecutor::new(),
            TokioIo::new(stream),
        )
        .await
        .unwrap();
        tokio::spawn(conn);
        let request = hyper::Request::post(format!("https://localhost:{port}/echo"))
            .body(Full::new(big.clone()))
            .unwrap();
        let response = sender.send_request(request).await.unwrap();
        assert_eq!(response.version(), hyper::Version::HTTP_2);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert!(body == big, "8 MiB over h2+TLS came back altered");

        // hyper's HTTP/1.1 client (ALPN http/1.1): keep-alive reuse and 8 MiB on one
        // connection.
        let stream = tls::connect(addr, tls::client_config(&cert, &[b"http/1.1"]))
            .await
            .unwrap();
        assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(conn);
        for _ in 0..3 {
            let request = hyper::Request::get("/plaintext")
                .header("host", "localhost")
                .body(Full::new(Bytes::new()))
                .unwrap();
            let response = sender.send_request(request).await.unwrap();
            assert_eq!(response.version(), hyper::Version::HTTP_11);
            let body = response.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(&body[..], b"Hello, World!");
        }
        let request = hyper::Request::post("/echo")
            .header("host", "localhost")
            .body(Full::new(big.clone()))
            .unwrap();
        let response = sender.send_request(request).await.unwrap();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert!(body == big, "8 MiB over HTTP/1.1+TLS came back altered");

        // A client that leaves in the middle of an upload.
        let mut stream = tls::connect(addr, tls::client_config(&cert, &[b"http/1.1"]))
            .await
            .unwrap();
        stream
            .write_all(b"POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 8388608\r\n\r\n")
            .await
            .unwrap();
        stream.write_all(&big[..1 << 20]).await.unwrap();
        drop(stream);
    });

    // h2load over TLS (when installed; CI installs it): h2 by ALPN, every request answered.
    if Command::new("h2load").arg("--version").output().is_ok() {
        let out = Command::new("h2load")
            .args(["-n", "4000", "-c", "8", "-m", "16"])
            .arg(format!("https://127.0.0.1:{port}/plaintext"))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("Application protocol: h2"), "{text}");
        assert!(
            text.contains("4000 succeeded, 0 failed, 0 errored"),
            "{text}"
        );
    }

    // Plaintext HTTP on the TLS port: the handshake fails, the connection closes.
    let mut plain = TcpStream::connect(addr).unwrap();
    plain
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    plain
        .write_all(b"GET /plaintext HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let mut answer = Vec::new();
    plain.read_to_end(&mut answer).unwrap();
    assert!(
        !answer.starts_with(b"HTTP/"),
        "plaintext HTTP was answered on the TLS port"
    );
    // A ClientHello cut short, then the client closes.
    let mut truncated = TcpStream::connect(addr).unwrap();
    truncated
        .write_all(&[
            0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03,
        ])
        .unwrap();
    drop(truncated);
    // A client that connects and says nothing: cut at the handshake timeout (1 s).
    let mut silent = TcpStream::connect(addr).unwrap();
    silent
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let started = Instant::now();
    let mut byte = [0u8; 1];
    let closed = silent.read(&mut byte);
    assert!(
        matches!(closed, Ok(0)) && started.elapsed() < Duration::from_secs(4),
        "a silent client was not cut at the handshake timeout: {closed:?} after {:?}",
        started.elapsed()
    );

    // Still serving.
    assert_eq!(curl_tls(&[&format!("{base}/plaintext")]), b"Hello, World!");

    server.wait_until_no_connection();
    wait_for("TLS connections to close", || {
        ringhop::http::tls::stats().open == before.open
    });
    let after = ringhop::http::tls::stats();
    assert!(
        after.handshake_failures >= before.handshake_failures + 3,
        "plaintext, truncated and silent handshakes counted as failures: {before:?} → {after:?}"
    );
    assert!(after.handshakes >= before.handshakes + 8, "{after:?}");
    server.stop().unwrap();
}

#[test]
fn a_client_that_chose_h2_by_alpn_and_sends_no_preface_is_closed_at_the_header_timeout() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (cert_pem, key_pem, cert) = tls::self_signed("hyper-preface");
    let acceptor = TlsAcceptor::from_pem_files(&cert_pem, &key_pem).unwrap();
    let config = Config::default().header_timeout(Duration::from_millis(300));
    let server = HyperTestServer::start_tls(config, 1, acceptor, || {
        hyper::service::service_fn(hyper_app::app::<RequestBody>)
    });
    let addr = server.addr;
    tokio_rt().block_on(async {
        use tokio::io::AsyncReadExt;
        let mut stream = tls::connect(addr, tls::client_config(&cert, &[b"h2"]))
            .await
            .unwrap();
        assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
        // Nothing sent: the server may send its SETTINGS, then must close.
        let started = Instant::now();
        let mut received = Vec::new();
        let read =
            tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut received)).await;
        assert!(
            read.is_ok(),
            "a client silent after choosing h2 was still connected after 5 s"
        );
        assert!(started.elapsed() < Duration::from_secs(3));
    });
}
