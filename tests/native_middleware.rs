//! The native server's connection chain: TLS (curl and rustls clients, ALPN, SNI-chosen
//! certificates, 8 MiB both ways, hostile handshakes), the connection log, the peer address,
//! and `Response::upgrade` — over cleartext and over TLS.

#[path = "common/net.rs"]
mod net;
#[path = "common/tls.rs"]
mod tls;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ringhop::http::tls::{certified_key_from_pem, TlsAcceptor};
use ringhop::http::{
    CloseReason, ConnRecord, ConnectionLog, Middleware, Request, Response, Router, Server,
};
use ringhop::rt::Runtime;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The process-wide counters (TLS, upgrades) are compared before and after: one test at a
/// time.
static SERIAL: Mutex<()> = Mutex::new(());

struct Running {
    addr: SocketAddr,
    runtime: Arc<Runtime>,
    thread: Option<std::thread::JoinHandle<std::io::Result<()>>>,
}

impl Running {
    fn start<M: Middleware + Clone + Send>(
        build: impl FnOnce(Server) -> Server<M> + Send + 'static,
    ) -> Running {
        let runtime = Arc::new(
            Runtime::builder()
                .reactors(1)
                .pin_cores(false)
                .build()
                .unwrap(),
        );
        let addr = net::free_local_addr();
        let rt = runtime.clone();
        let thread = std::thread::spawn(move || {
            build(Server::bind(addr).handle_signals(false)).run(&rt, router())
        });
        while TcpStream::connect(addr).is_err() {
            std::thread::sleep(Duration::from_millis(5));
        }
        Running {
            addr,
            runtime,
            thread: Some(thread),
        }
    }

    fn wait_until_no_connection(&self) {
        let started = Instant::now();
        while ringhop::http::stats(&self.runtime).total.open_connections > 0 {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "connections stay open"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        ringhop::http::trigger_shutdown(&self.runtime);
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap().unwrap();
        }
    }
}

async fn echo(req: &mut Request<'_>, res: &mut Response<'_>) -> std::io::Result<()> {
    while let Some(chunk) = req.body().chunk().await? {
        res.write_chunk(chunk).await?;
    }
    res.finish();
    Ok(())
}

/// What the server knows of the connection: `peer local sni alpn version`.
async fn whoami(req: &mut Request<'_>, res: &mut Response<'_>) -> std::io::Result<()> {
    let info = req.conn_info();
    let tls = info.tls.clone().unwrap_or_default();
    let body = format!(
        "{} {} {} {} {}",
        req.peer_addr().unwrap(),
        req.local_addr().unwrap(),
        tls.server_name.as_deref().unwrap_or("-"),
        String::from_utf8_lossy(tls.alpn.as_deref().unwrap_or(b"-")),
        if tls.version.is_empty() {
            "-"
        } else {
            tls.version
        },
    );
    res.body(body.as_bytes());
    Ok(())
}

/// `Upgrade: echo`: after the 101 the connection echoes whatever it gets.
async fn upgrade(req: &mut Request<'_>, res: &mut Response<'_>) -> std::io::Result<()> {
    if req.header("upgrade") != Some(&b"echo"[..]) {
        res.status(ringhop::http::Status(426))
            .body(b"Upgrade: echo");
        return Ok(());
    }
    res.header("X-Before", "kept");
    res.upgrade("echo", echo_protocol)
}

/// The upgraded protocol: echoes what it gets.
async fn echo_protocol(mut pipe: ringhop::pipes::DuplexPipe) {
    while let Ok(read) = pipe.input.read().await {
        let (bytes, done) = (read.to_vec(), read.is_completed());
        let _ = pipe.input.advance_to(bytes.len(), bytes.len());
        if pipe.output.write_all(&bytes).await.is_err() || done {
            break;
        }
    }
}

/// Switches to the echo protocol, then fails (`?fail`) or panics, leaving the request's
/// body unread.
async fn upgrade_then_fail(req: &mut Request<'_>, res: &mut Response<'_>) -> std::io::Result<()> {
    let fail = req.query() == Some("fail");
    res.upgrade("echo", echo_protocol)?;
    if fail {
        return Err(std::io::Error::other("failed after the 101"));
    }
    panic!("panicked after the 101")
}

/// An upgraded protocol that panics: the connection ends, the server goes on.
async fn upgrade_and_panic(_req: &mut Request<'_>, res: &mut Response<'_>) -> std::io::Result<()> {
    res.upgrade("echo", |_pipe| async move {
        panic!("the upgraded protocol failed")
    })
}

/// 1 MiB, for clients that do not read.
async fn big(_req: &mut Request<'_>, res: &mut Response<'_>) -> std::io::Result<()> {
    res.body(&vec![b'x'; 1 << 20]);
    Ok(())
}

fn router() -> impl ringhop::http::Handler + Clone + Send + 'static {
    Router::new()
        .post("/echo", echo)
        .get("/whoami", whoami)
        .get("/upgrade", upgrade)
        .get("/upgrade-panic", upgrade_and_panic)
        .post("/upgrade-then-fail", upgrade_then_fail)
        .get("/big", big)
}

fn curl(args: &[&str]) -> Vec<u8> {
    let output = Command::new("curl")
        .args(["-s", "--max-time", "20"])
        .args(args)
        .output()
        .expect("curl is installed (.ci/run installs it)");
    assert!(output.status.success(), "curl {args:?}: {output:?}");
    output.stdout
}

/// Reads until `needle` has arrived (or panics after 5 s).
/// A plain client that gives up reading after 5 s.
fn connect(addr: std::net::SocketAddr) -> TcpStream {
    let client = TcpStream::connect(addr).unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    client
}

fn read_until(stream: &mut impl Read, buf: &mut Vec<u8>, needle: &[u8]) {
    let started = Instant::now();
    let mut chunk = [0u8; 4096];
    while !buf.windows(needle.len()).any(|w| w == needle) {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "no {needle:?} in {buf:?}"
        );
        let n = stream.read(&mut chunk).unwrap();
        assert!(
            n > 0,
            "closed before {needle:?}: {:?}",
            String::from_utf8_lossy(buf)
        );
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Everything the server sends until it closes, and how it closed (`Ok`: a clean end).
fn read_until_closed(stream: &mut TcpStream) -> (Vec<u8>, std::io::Result<()>) {
    let mut got = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => return (got, Ok(())),
            Err(err) => return (got, Err(err)),
            Ok(n) => got.extend_from_slice(&chunk[..n]),
        }
    }
}

#[test]
fn connection_log_peer_address_and_upgrade_in_cleartext() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let records: Arc<Mutex<Vec<ConnRecord>>> = Arc::default();
    let sink = records.clone();
    let server = Running::start(move |server| {
        server.middleware(ConnectionLog::to(move |record| {
            sink.lock().unwrap().push(record.clone())
        }))
    });

    // The peer and local addresses reach the handler.
    let mut client = connect(server.addr);
    let request = b"GET /whoami HTTP/1.1\r\nHost: x\r\n\r\n";
    client.write_all(request).unwrap();
    let mut response = Vec::new();
    read_until(&mut client, &mut response, b"- - -");
    let expected = format!("{} {} - - -", client.local_addr().unwrap(), server.addr);
    assert!(
        String::from_utf8_lossy(&response).ends_with(&expected),
        "{:?} does not end with {expected:?}",
        String::from_utf8_lossy(&response)
    );
    drop(client);

    // The log: a record with the exact byte counts both ways, the client closed first.
    // (Another record is the start-up probe's connection, which sent nothing.)
    let started = Instant::now();
    let record = loop {
        let found = records
            .lock()
            .unwrap()
            .iter()
            .find(|r| r.bytes_in > 0)
            .cloned();
        if let Some(record) = found {
            break record;
        }
        assert!(started.elapsed() < Duration::from_secs(5), "no log record");
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(record.bytes_in, request.len() as u64);
    assert_eq!(record.bytes_out, response.len() as u64);
    assert_eq!(record.close, CloseReason::ClientClosed);
    assert!(record.peer_addr.is_some());

    // The server closes (Connection: close): the log says so.
    let mut client = connect(server.addr);
    let closing = b"GET /whoami HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    client.write_all(closing).unwrap();
    let mut answer = Vec::new();
    client.read_to_end(&mut answer).unwrap();
    let started = Instant::now();
    let record = loop {
        let found = records
            .lock()
            .unwrap()
            .iter()
            .find(|r| r.bytes_in == closing.len() as u64)
            .cloned();
        if let Some(record) = found {
            break record;
        }
        assert!(started.elapsed() < Duration::from_secs(5), "no log record");
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(record.close, CloseReason::ServerClosed, "{record:?}");
    assert_eq!(record.bytes_out, answer.len() as u64);
    drop(client);

    // An upgrade whose client waits for `100 Continue` with a body it never sends: the 101
    // goes out, no `100 Continue` after it, and the abandoned upgrade ends in a reset.
    let mut client = connect(server.addr);
    client
        .write_all(b"GET /upgrade HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
        .unwrap();
    let (got, end) = read_until_closed(&mut client);
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 101 "), "{text}");
    assert!(!text.contains("100 Continue"), "{text}");
    assert!(
        matches!(&end, Err(err) if err.kind() == std::io::ErrorKind::ConnectionReset),
        "an abandoned upgrade ended cleanly: {end:?}"
    );

    // Upgrade: the 101 (with the handler's header), then the bytes sent right behind the
    // request and later ones come back from the new protocol.
    let before = ringhop::http::upgrade_stats();
    let mut client = connect(server.addr);
    client
        .write_all(b"GET /upgrade HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\nearly bytes|")
        .unwrap();
    let mut got = Vec::new();
    read_until(&mut client, &mut got, b"early bytes|");
    let text = String::from_utf8_lossy(&got).into_owned();
    assert!(
        text.starts_with("HTTP/1.1 101 Switching Protocols\r\n"),
        "{text}"
    );
    assert!(text.contains("\r\nUpgrade: echo\r\n"), "{text}");
    assert!(text.contains("\r\nConnection: Upgrade\r\n"), "{text}");
    assert!(text.contains("\r\nX-Before: kept\r\n"), "{text}");
    assert!(!text.contains("Content-Length"), "{text}");
    assert_eq!(ringhop::http::upgrade_stats().open, before.open + 1);
    client.write_all(b"later").unwrap();
    read_until(&mut client, &mut got, b"later");
    client.shutdown(std::net::Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    client.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty(), "{rest:?}");

    // Not an upgrade request: the handler's refusal, not a 101.
    let mut client = connect(server.addr);
    client
        .write_all(
            b"GET /upgrade HTTP/1.1\r\nHost: x\r\nUpgrade: other\r\nConnection: close\r\n\r\n",
        )
        .unwrap();
    let mut answer = Vec::new();
    client.read_to_end(&mut answer).unwrap();
    assert!(answer.starts_with(b"HTTP/1.1 426 "), "{answer:?}");

    // An upgraded protocol that panics: that connection closes; counters still balance.
    let mut client = connect(server.addr);
    client
        .write_all(b"GET /upgrade-panic HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
        .unwrap();
    let mut answer = Vec::new();
    let _ = client.read_to_end(&mut answer);
    assert!(answer.starts_with(b"HTTP/1.1 101 "), "{answer:?}");

    server.wait_until_no_connection();
    let after = ringhop::http::upgrade_stats();
    assert_eq!(after.open, before.open);
    // The echo upgrade and the panicking one (the abandoned one never switched).
    assert_eq!(after.upgraded, before.upgraded + 2);
}

#[test]
fn a_handler_that_fails_after_its_upgrade_resets_the_connection_instead_of_switching() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let server = Running::start(|server| server);
    let before = ringhop::http::upgrade_stats();
    for query in ["?fail", ""] {
        // The body the handler never read must not reach the new protocol (which would
        // echo it as its own bytes), and the 101 without a working protocol behind it ends
        // in a reset, as any response cut short.
        let mut client = connect(server.addr);
        let request = format!(
            "POST /upgrade-then-fail{query} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n\
             Upgrade: echo\r\nContent-Length: 5\r\n\r\nhello"
        );
        client.write_all(request.as_bytes()).unwrap();
        let (got, end) = read_until_closed(&mut client);
        let text = String::from_utf8_lossy(&got);
        assert!(text.starts_with("HTTP/1.1 101 "), "{query}: {text}");
        assert!(
            !text.contains("hello"),
            "{query}: the body reached the protocol: {text}"
        );
        assert!(
            matches!(&end, Err(err) if err.kind() == std::io::ErrorKind::ConnectionReset),
            "{query}: ended {end:?} after {text}"
        );
    }
    server.wait_until_no_connection();
    let after = ringhop::http::upgrade_stats();
    assert_eq!(after.open, before.open);
    assert_eq!(
        after.upgraded, before.upgraded,
        "an abandoned upgrade was counted"
    );
}

#[test]
fn native_server_over_tls() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (cert_pem, key_pem, cert) = tls::self_signed("native");
    // Two names, two certificates: chosen by SNI (an unknown name is refused).
    let (other_pem, other_key_pem, _) = tls::self_signed_for("native-other", &["other.test"]);
    let main_key = certified_key_from_pem(
        &std::fs::read(&cert_pem).unwrap(),
        &std::fs::read(&key_pem).unwrap(),
    )
    .unwrap();
    let other_key = certified_key_from_pem(
        &std::fs::read(&other_pem).unwrap(),
        &std::fs::read(&other_key_pem).unwrap(),
    )
    .unwrap();
    let acceptor = TlsAcceptor::with_sni(move |name| match name {
        Some("localhost") | None => Some(main_key.clone()),
        Some("other.test") => Some(other_key.clone()),
        Some(_) => None,
    })
    .handshake_timeout(Duration::from_secs(1));
    let records: Arc<Mutex<Vec<ConnRecord>>> = Arc::default();
    let sink = records.clone();
    let before = ringhop::http::tls::stats();
    // The log after TLS counts plaintext.
    let server = Running::start(move |server| {
        server
            .tls(acceptor)
            .middleware(ConnectionLog::to(move |record| {
                sink.lock().unwrap().push(record.clone())
            }))
    });
    let port = server.addr.port();
    let resolve = format!("localhost:{port}:127.0.0.1");
    let resolve_other = format!("other.test:{port}:127.0.0.1");
    let cacert = cert_pem.to_str().unwrap();

    // curl offers h2 and http/1.1: this server takes http/1.1. The handler sees the SNI
    // name, ALPN and version.
    let whoami = String::from_utf8(curl(&[
        "--cacert",
        cacert,
        "--resolve",
        &resolve,
        "--http2",
        &format!("https://localhost:{port}/whoami"),
    ]))
    .unwrap();
    assert!(whoami.ends_with(" localhost http/1.1 TLSv1.3"), "{whoami}");
    // `curl --http1.0` offers only `http/1.0` by ALPN: served (as nginx does), not refused
    // with `no_application_protocol`.
    let http10 = String::from_utf8(curl(&[
        "--cacert",
        cacert,
        "--resolve",
        &resolve,
        "--http1.0",
        &format!("https://localhost:{port}/whoami"),
    ]))
    .unwrap();
    assert!(http10.ends_with(" localhost http/1.0 TLSv1.3"), "{http10}");
    // The second certificate, by name (curl verifies it against its own CA file).
    let other = String::from_utf8(curl(&[
        "--cacert",
        other_pem.to_str().unwrap(),
        "--resolve",
        &resolve_other,
        &format!("https://other.test:{port}/whoami"),
    ]))
    .unwrap();
    assert!(other.contains(" other.test http/1.1 "), "{other}");
    // An unknown name: the handshake is refused.
    let refused = Command::new("curl")
        .args(["-s", "-k", "--max-time", "10", "--resolve"])
        .arg(format!("unknown.test:{port}:127.0.0.1"))
        .arg(format!("https://unknown.test:{port}/whoami"))
        .output()
        .unwrap();
    assert!(!refused.status.success() && refused.stdout.is_empty());

    // 8 MiB up and back through curl (with its default Expect: 100-continue).
    let dir = std::env::temp_dir().join(format!("ringhop-native-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let upload = dir.join("upload.bin");
    let big: Vec<u8> = (0..8u32 << 20).map(|i| (i % 251) as u8).collect();
    std::fs::write(&upload, &big).unwrap();
    let echoed = curl(&[
        "--cacert",
        cacert,
        "--resolve",
        &resolve,
        "--data-binary",
        &format!("@{}", upload.display()),
        &format!("https://localhost:{port}/echo"),
    ]);
    assert!(echoed == big, "8 MiB over TLS came back altered");

    let addr = server.addr;
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            // A client offering only h2: refused with `no_application_protocol` (RFC 7301).
            let refused = tls::connect(addr, tls::client_config(&cert, &[b"h2"])).await;
            let Err(err) = refused else {
                panic!("an h2-only client was accepted");
            };
            assert!(err.to_string().contains("NoApplicationProtocol"), "{err}");
            // A client without ALPN speaks HTTP/1.1; the upgrade over TLS.
            let mut stream = tls::connect(addr, tls::client_config(&cert, &[]))
                .await
                .unwrap();
            assert_eq!(stream.get_ref().1.alpn_protocol(), None);
            stream
                .write_all(b"GET /upgrade HTTP/1.1\r\nHost: localhost\r\nConnection: upgrade\r\nUpgrade: echo\r\n\r\nping")
                .await
                .unwrap();
            let mut got = Vec::new();
            let mut chunk = [0u8; 1024];
            while !got.ends_with(b"ping") {
                let n = stream.read(&mut chunk).await.unwrap();
                assert!(n > 0, "{:?}", String::from_utf8_lossy(&got));
                got.extend_from_slice(&chunk[..n]);
            }
            assert!(got.starts_with(b"HTTP/1.1 101 "));
            stream.shutdown().await.unwrap();
            let mut rest = Vec::new();
            let _ = stream.read_to_end(&mut rest).await;

            // A client that leaves mid-upload.
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

    // Plaintext on the TLS port, and a client that says nothing: closed, counted.
    let mut plain = TcpStream::connect(addr).unwrap();
    plain
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    plain
        .write_all(b"GET /whoami HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut answer = Vec::new();
    plain.read_to_end(&mut answer).unwrap();
    assert!(!answer.starts_with(b"HTTP/"));
    let mut silent = TcpStream::connect(addr).unwrap();
    silent
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let started = Instant::now();
    assert!(matches!(silent.read(&mut [0u8; 1]), Ok(0)));
    assert!(started.elapsed() < Duration::from_secs(4));

    // Still serving; then everything closes and the counters return.
    assert!(curl(&[
        "--cacert",
        cacert,
        "--resolve",
        &resolve,
        &format!("https://localhost:{port}/whoami"),
    ])
    .ends_with(b"TLSv1.3"));
    server.wait_until_no_connection();
    let started = Instant::now();
    while ringhop::http::tls::stats().open != before.open {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "TLS connections stay open"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let after = ringhop::http::tls::stats();
    // Unknown SNI name, h2-only, plaintext, silent.
    assert!(
        after.handshake_failures >= before.handshake_failures + 4,
        "{after:?}"
    );
    // The log after TLS saw plaintext: the first record is the whoami exchange.
    let records = records.lock().unwrap();
    assert!(records.len() >= 5, "{records:?}");
    assert!(records.iter().any(|r| r.bytes_out >= 8 << 20));
}

#[test]
fn hostile_clients_over_tls_meet_the_same_defences() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (cert_pem, key_pem, cert) = tls::self_signed("native-hostile");
    let acceptor = TlsAcceptor::from_pem_files(&cert_pem, &key_pem).unwrap();
    let config = ringhop::http::Config::default()
        .idle_timeout(Duration::from_secs(1))
        .header_timeout(Duration::from_secs(1))
        .min_response_data_rate(Some(ringhop::http::MinDataRate {
            bytes_per_second: 64 * 1024,
            grace: Duration::from_secs(1),
        }));
    let before = ringhop::http::tls::stats();
    let server = Running::start(move |server| server.config(config).tls(acceptor));
    let addr = server.addr;
    let client_config = tls::client_config(&cert, &[b"http/1.1"]);
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            // Idle after the handshake: closed at the idle timeout, cleanly (close_notify).
            let mut idle = tls::connect(addr, client_config.clone()).await.unwrap();
            let started = Instant::now();
            let mut buf = Vec::new();
            let read = tokio::time::timeout(Duration::from_secs(5), idle.read_to_end(&mut buf))
                .await
                .expect("an idle TLS connection was not closed");
            assert!(read.is_ok(), "not a clean TLS close: {read:?}");
            assert!(started.elapsed() < Duration::from_secs(4));

            // Half a head, then silence: 408 at the header timeout, inside TLS.
            let mut slow = tls::connect(addr, client_config.clone()).await.unwrap();
            slow.write_all(b"GET /whoami HTTP/1.1\r\nHost: loc")
                .await
                .unwrap();
            let mut answer = Vec::new();
            let _ = tokio::time::timeout(Duration::from_secs(5), slow.read_to_end(&mut answer))
                .await
                .expect("a slow head over TLS was not answered");
            assert!(
                answer.starts_with(b"HTTP/1.1 408 "),
                "{:?}",
                String::from_utf8_lossy(&answer)
            );

            // Pipelines 64 requests for 1 MiB each and never reads: cut by the minimum
            // response rate, while a fresh client is served meanwhile.
            let mut hog = tls::connect(addr, client_config.clone()).await.unwrap();
            for _ in 0..64 {
                hog.write_all(b"GET /big HTTP/1.1\r\nHost: localhost\r\n\r\n")
                    .await
                    .unwrap();
            }
            hog.flush().await.unwrap();
            let started = Instant::now();
            let mut fresh = tls::connect(addr, client_config.clone()).await.unwrap();
            fresh
                .write_all(b"GET /whoami HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                .await
                .unwrap();
            let mut answer = Vec::new();
            fresh.read_to_end(&mut answer).await.unwrap();
            assert!(
                answer.ends_with(b"TLSv1.3"),
                "{:?}",
                String::from_utf8_lossy(&answer)
            );
            assert!(started.elapsed() < Duration::from_secs(1));
            // The hog's connection ends (reset or close) within grace + a watchdog tick or two.
            let started = Instant::now();
            loop {
                tokio::time::sleep(Duration::from_millis(100)).await;
                let stats = ringhop::http::stats(&server.runtime).total;
                if stats.closed_send_rate > 0 {
                    break;
                }
                assert!(
                    started.elapsed() < Duration::from_secs(6),
                    "a TLS client that never reads was not cut: {stats:?}"
                );
            }
            drop(hog);
        });
    server.wait_until_no_connection();
    let started = Instant::now();
    while ringhop::http::tls::stats().open != before.open {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "TLS connections stay open"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_tls_client_that_half_closes_without_close_notify_gets_its_whole_answer() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (cert_pem, key_pem, cert) = tls::self_signed("half-close");
    let acceptor = TlsAcceptor::from_pem_files(&cert_pem, &key_pem).unwrap();
    let server = Running::start(move |server| server.tls(acceptor));
    let addr = server.addr;
    let body: Vec<u8> = (0..3_000_000u32).map(|i| (i % 253) as u8).collect();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            for round in 0..3 {
                let stream = tls::connect(addr, tls::client_config(&cert, &[b"http/1.1"]))
                    .await
                    .unwrap();
                let fd = std::os::fd::AsRawFd::as_raw_fd(stream.get_ref().0);
                let (mut reader, mut writer) = tokio::io::split(stream);
                let send = async {
                    writer
                        .write_all(
                            format!(
                                "POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\n\r\n",
                                body.len()
                            )
                            .as_bytes(),
                        )
                        .await
                        .unwrap();
                    writer.write_all(&body).await.unwrap();
                    writer.flush().await.unwrap();
                    // The request is complete; the client shuts its TCP side down without a
                    // close_notify, as a TLS client that half-closes on end of input does.
                    // SAFETY: `fd` is the open socket `reader`/`writer` still own.
                    assert_eq!(unsafe { libc::shutdown(fd, libc::SHUT_WR) }, 0);
                    writer
                };
                let receive = async {
                    let mut got = Vec::new();
                    let ended = tokio::time::timeout(
                        Duration::from_secs(10),
                        reader.read_to_end(&mut got),
                    )
                    .await;
                    (got, ended)
                };
                let (_writer, (got, ended)) = tokio::join!(send, receive);
                let text = String::from_utf8_lossy(&got[..got.len().min(200)]).into_owned();
                assert!(text.starts_with("HTTP/1.1 200 "), "round {round}: {text}");
                let Some(head_end) = got.windows(4).position(|w| w == b"\r\n\r\n") else {
                    panic!("round {round}: no head in {text}");
                };
                let echoed = dechunk(&got[head_end + 4..]);
                assert!(
                    echoed.len() == body.len() && echoed == body,
                    "round {round}: {} of {} bytes came back ({ended:?})",
                    echoed.len(),
                    body.len()
                );
            }
        });
    server.wait_until_no_connection();
}

/// The data of a chunked body (as far as it is well formed).
fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut data = Vec::new();
    while let Some(line_end) = body.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&body[..line_end])
            .ok()
            .and_then(|size| usize::from_str_radix(size, 16).ok());
        let Some(size) = size.filter(|&size| size > 0) else {
            break;
        };
        let start = line_end + 2;
        let Some(chunk) = body.get(start..start + size) else {
            break;
        };
        data.extend_from_slice(chunk);
        body = &body[(start + size + 2).min(body.len())..];
    }
    data
}
