//! hyper over ringhop with real clients: curl (HTTP/1.1 and HTTP/2 prior knowledge), hyper's
//! own clients (keep-alive, 8 MiB streaming both ways, many concurrent HTTP/2 streams), a raw
//! socket (pipelining, early disconnect) and h2load; then no poll ran off its reactor.

mod support;

#[allow(dead_code)]
#[path = "../examples/hyper_app.rs"]
mod hyper_app;

use std::io::{Read, Write};
use std::process::Command;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use ringhop::http::Config;
use support::{tokio_rt, HyperTestServer};

fn curl(args: &[&str]) -> Vec<u8> {
    let output = Command::new("curl")
        .args(["-s", "--max-time", "20"])
        .args(args)
        .output()
        .expect("curl is installed (.ci/run installs it)");
    assert!(output.status.success(), "curl {args:?}: {output:?}");
    output.stdout
}

#[test]
fn hyper_on_ringhop_with_real_clients() {
    let server = HyperTestServer::start(Config::default(), 2, || {
        hyper::service::service_fn(hyper_app::app::<ringhop::http::hyper::RequestBody>)
    });
    let base = format!("http://{}", server.addr);

    // curl, HTTP/1.1 and HTTP/2 with prior knowledge.
    assert_eq!(curl(&[&format!("{base}/plaintext")]), b"Hello, World!");
    assert_eq!(
        curl(&["--http2-prior-knowledge", &format!("{base}/json")]),
        br#"{"message":"Hello, World!"}"#
    );
    let version = curl(&[
        "--http2-prior-knowledge",
        "-o",
        "/dev/null",
        "-w",
        "%{http_version}",
        &format!("{base}/"),
    ]);
    assert_eq!(version, b"2");
    assert_eq!(
        curl(&[
            "--http2-prior-knowledge",
            "--data-binary",
            "h2 body",
            &format!("{base}/echo")
        ]),
        b"h2 body"
    );

    // A wrong method: 405 with the methods the resource has (RFC 9110 §15.5.6).
    let wrong = curl(&["-i", "-X", "POST", &format!("{base}/json")]);
    let wrong = String::from_utf8_lossy(&wrong).to_ascii_lowercase();
    assert!(
        wrong.starts_with("http/1.1 405") && wrong.contains("\r\nallow: get, head\r\n"),
        "{wrong}"
    );
    let wrong = curl(&["-i", &format!("{base}/echo")]);
    assert!(
        String::from_utf8_lossy(&wrong)
            .to_ascii_lowercase()
            .contains("\r\nallow: post\r\n"),
        "{}",
        String::from_utf8_lossy(&wrong)
    );

    // curl with its defaults uploads 3 MiB with `Expect: 100-continue`: the echo reads the
    // body before it answers, so hyper sends the 100 at once instead of curl waiting a
    // second for it; the bytes come back intact.
    let upload: Vec<u8> = (0..3u32 << 20).map(|i| (i % 251) as u8).collect();
    let path = std::env::temp_dir().join(format!("ringhop-upload-{}", std::process::id()));
    std::fs::write(&path, &upload).unwrap();
    let started = std::time::Instant::now();
    let echoed = curl(&[
        "--data-binary",
        &format!("@{}", path.display()),
        &format!("{base}/echo"),
    ]);
    let took = started.elapsed();
    std::fs::remove_file(&path).unwrap();
    assert!(echoed == upload, "a 3 MiB curl upload came back altered");
    assert!(
        took < std::time::Duration::from_millis(900),
        "curl waited {took:?}: no 100 Continue"
    );

    let big: Bytes = (0..8u32 << 20)
        .map(|i| (i % 253) as u8)
        .collect::<Vec<u8>>()
        .into();
    let addr = server.addr;
    tokio_rt().block_on(async {
        // hyper's HTTP/1.1 client: keep-alive reuse and an 8 MiB echo on one connection.
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .unwrap();
        tokio::spawn(conn);
        for _ in 0..3 {
            let req = hyper::Request::get("/plaintext")
                .header("host", "a")
                .body(Full::new(Bytes::new()))
                .unwrap();
            let res = sender.send_request(req).await.unwrap();
            assert_eq!(
                res.into_body().collect().await.unwrap().to_bytes(),
                "Hello, World!"
            );
        }
        let req = hyper::Request::post("/echo")
            .header("host", "a")
            .body(Full::new(big.clone()))
            .unwrap();
        let res = sender.send_request(req).await.unwrap();
        assert!(res.into_body().collect().await.unwrap().to_bytes() == big);

        // hyper's HTTP/2 client: 200 concurrent streams on one connection.
        let (sender, _conn) = support::http2_client(addr).await;
        let mut streams = Vec::new();
        for i in 0..200u32 {
            let mut sender = sender.clone();
            streams.push(tokio::spawn(async move {
                let req = hyper::Request::post(format!("http://{addr}/echo"))
                    .body(Full::new(Bytes::from(i.to_string())))
                    .unwrap();
                let res = sender.send_request(req).await.unwrap();
                res.into_body().collect().await.unwrap().to_bytes() == i.to_string()
            }));
        }
        for stream in streams {
            assert!(stream.await.unwrap());
        }
        let req = hyper::Request::post(format!("http://{addr}/echo"))
            .body(Full::new(big.clone()))
            .unwrap();
        let res = sender.clone().send_request(req).await.unwrap();
        assert!(
            res.into_body().collect().await.unwrap().to_bytes() == big,
            "h2 8 MiB echo"
        );
    });

    // Pipelining over a raw socket, then an early disconnect mid-body.
    let mut raw = std::net::TcpStream::connect(addr).unwrap();
    raw.write_all(&b"GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n".repeat(16))
        .unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while seen.windows(13).filter(|w| w == b"Hello, World!").count() < 16 {
        let n = raw.read(&mut buf).unwrap();
        assert!(n > 0, "connection closed before 16 pipelined responses");
        seen.extend_from_slice(&buf[..n]);
    }
    let mut early = std::net::TcpStream::connect(addr).unwrap();
    early
        .write_all(b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 1000000\r\n\r\npartial")
        .unwrap();
    drop(early);
    assert_eq!(curl(&[&format!("{base}/plaintext")]), b"Hello, World!");

    // h2load, when installed (.ci/run installs nghttp2-client).
    if Command::new("h2load").arg("--version").output().is_ok() {
        let output = Command::new("h2load")
            .args([
                "-n",
                "10000",
                "-c",
                "10",
                "-m",
                "10",
                &format!("{base}/plaintext"),
            ])
            .output()
            .unwrap();
        let report = String::from_utf8_lossy(&output.stdout);
        assert!(
            report.contains("10000 succeeded, 0 failed, 0 errored, 0 timeout"),
            "{report}"
        );
    }

    let runtime = server.runtime.clone();
    server.stop().unwrap();
    let off_reactor: u64 = runtime
        .handles()
        .iter()
        .map(|h| h.stats().off_reactor_polls)
        .sum();
    assert_eq!(off_reactor, 0, "a poll ran off its owning reactor");
}

/// HEAD over HTTP/2: the headers alone, END_STREAM on them, and Content-Length as a GET
/// would have it. `hyper_app` gives its body for HEAD too (as many services do, relying on
/// hyper's HTTP/1 to drop it); hyper's HTTP/2 sent it as DATA, which curl and nghttp reject
/// as a protocol error.
#[test]
fn head_over_http2_is_answered_without_content() {
    let server = HyperTestServer::start(Config::default(), 1, || {
        hyper::service::service_fn(hyper_app::app::<ringhop::http::hyper::RequestBody>)
    });
    let addr = server.addr;
    let head = curl(&[
        "--http2-prior-knowledge",
        "-I",
        &format!("http://{addr}/json"),
    ]);
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    assert!(head.starts_with("http/2 200"), "{head}");
    assert!(head.contains("content-length: 27\r\n"), "{head}");
    tokio_rt().block_on(async {
        let (mut sender, _conn) = support::http2_client(addr).await;
        let req = hyper::Request::head(format!("http://{addr}/json"))
            .body(http_body_util::Empty::<Bytes>::new())
            .unwrap();
        let res = sender.send_request(req).await.unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()["content-length"], "27");
        assert!(
            hyper::body::Body::is_end_stream(res.body()),
            "the HEADERS frame did not end the stream"
        );
        assert!(res
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .is_empty());
        // GET on the same connection still gets its body.
        let req = hyper::Request::get(format!("http://{addr}/json"))
            .body(http_body_util::Empty::<Bytes>::new())
            .unwrap();
        let res = sender.send_request(req).await.unwrap();
        assert_eq!(
            res.into_body().collect().await.unwrap().to_bytes(),
            r#"{"message":"Hello, World!"}"#
        );
    });
}
