//! Runs `examples/axum_app` (with `tokio-compat`, which the examples get through the
//! dev-dependencies) as a process, as a user would: every
//! route (the timeout route really times out), a path parameter, `ConnectInfo`, HTTP/2, a
//! WebSocket echo over ws:// and wss://, then SIGTERM → drain → exit 0 with no ringhop task
//! polled off its reactor.

#[path = "common/net.rs"]
mod net;
#[path = "common/tls.rs"]
mod tls;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::tungstenite::Message;

fn example_binary() -> PathBuf {
    // target/<profile>/deps/axum_example-<hash> → target/<profile>/examples/axum_app
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().unwrap().parent().unwrap();
    let mut cargo = Command::new(env!("CARGO"));
    cargo.args([
        "build",
        "--features",
        "tokio-compat",
        "--example",
        "axum_app",
    ]);
    if profile_dir.ends_with("release") {
        cargo.arg("--release");
    }
    assert!(
        cargo.status().unwrap().success(),
        "building examples/axum_app failed"
    );
    profile_dir.join("examples").join("axum_app")
}

struct App {
    child: Child,
    addr: SocketAddr,
    stdout: BufReader<std::process::ChildStdout>,
}

impl App {
    fn start(env: &[(&str, &str)]) -> App {
        let addr = net::free_local_addr();
        let mut child = Command::new(example_binary())
            .env("ADDR", addr.to_string())
            .env("REACTORS", "2")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut banner = String::new();
        stdout.read_line(&mut banner).unwrap();
        assert!(
            banner.starts_with("axum on ringhop listening on "),
            "{banner}"
        );
        App {
            child,
            addr,
            stdout,
        }
    }

    /// SIGTERM; returns the exit status and what it printed after the banner.
    fn stop(mut self) -> (std::process::ExitStatus, String) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let mut rest = String::new();
        self.stdout.read_to_string(&mut rest).unwrap();
        (self.child.wait().unwrap(), rest)
    }
}

impl Drop for App {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One request on a fresh connection; the whole response.
fn get(addr: SocketAddr, path: &str) -> (TcpStream, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    stream.read_to_string(&mut out).unwrap();
    (stream, out)
}

async fn ws_echo<S: AsyncRead + AsyncWrite + Unpin>(url: &str, io: S) {
    let (mut ws, response) = tokio_tungstenite::client_async(url, io).await.unwrap();
    assert_eq!(response.status(), 101);
    let messages = [
        Message::text("axum on ringhop"),
        Message::binary(vec![7u8; 200 * 1024]),
    ];
    for message in messages {
        ws.send(message.clone()).await.unwrap();
        assert_eq!(ws.next().await.unwrap().unwrap(), message);
    }
    ws.close(None).await.unwrap();
    while let Some(Ok(_)) = ws.next().await {}
}

#[test]
fn axum_app_serves_every_route_and_drains_on_sigterm() {
    let app = App::start(&[]);
    let addr = app.addr;
    let (_, plain) = get(addr, "/plaintext");
    assert!(
        plain.starts_with("HTTP/1.1 200") && plain.ends_with("Hello, World!"),
        "{plain}"
    );
    let (_, json) = get(addr, "/json");
    assert!(json.contains("application/json"), "{json}");
    assert!(json.ends_with(r#"{"message":"Hello, World!"}"#), "{json}");
    let (_, user) = get(addr, "/users/4711");
    assert!(user.ends_with("user 4711"), "{user}");
    let (_, bad) = get(addr, "/users/not-a-number");
    assert!(bad.starts_with("HTTP/1.1 400"), "{bad}");
    let (_, missing) = get(addr, "/nope");
    assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");
    // ConnectInfo: the client's own address.
    let (stream, peer) = get(addr, "/peer");
    let local = stream.local_addr().unwrap().to_string();
    assert!(peer.ends_with(&local), "{peer} does not end with {local}");
    // tower-http's TimeoutLayer (tokio's timer, on the side runtime): 408 after 500 ms.
    let started = Instant::now();
    let (_, slow) = get(addr, "/slow");
    let took = started.elapsed();
    assert!(slow.starts_with("HTTP/1.1 408"), "{slow}");
    assert!(
        took >= Duration::from_millis(450) && took < Duration::from_secs(3),
        "{took:?}"
    );
    // HTTP/2 with prior knowledge, through curl.
    let h2 = Command::new("curl")
        .args(["-s", "--http2-prior-knowledge", "-w", " %{http_version}"])
        .arg(format!("http://{addr}/users/9"))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&h2.stdout), "user 9 2");
    // WebSocket echo (axum's WebSocketUpgrade, whose on_upgrade calls tokio::spawn).
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
            ws_echo(&format!("ws://{addr}/ws"), tcp).await;
        });

    let (status, printed) = app.stop();
    assert!(status.success(), "{status:?}: {printed}");
    assert!(
        printed.contains("off-reactor polls of ringhop tasks: 0"),
        "{printed}"
    );
    assert!(printed.contains("connections open: 0"), "{printed}");
}

#[test]
fn axum_app_over_https_with_wss() {
    let (cert_pem, key_pem, cert) = tls::self_signed("axum");
    let app = App::start(&[
        ("TLS_CERT", cert_pem.to_str().unwrap()),
        ("TLS_KEY", key_pem.to_str().unwrap()),
    ]);
    let addr = app.addr;
    let port = addr.port();
    let curl = Command::new("curl")
        .args(["-s", "--cacert", cert_pem.to_str().unwrap(), "--resolve"])
        .arg(format!("localhost:{port}:127.0.0.1"))
        .args(["-w", " %{http_version}"])
        .arg(format!("https://localhost:{port}/users/5"))
        .output()
        .unwrap();
    // HTTP/2, negotiated by ALPN.
    assert_eq!(String::from_utf8_lossy(&curl.stdout), "user 5 2");
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let stream = tls::connect(addr, tls::client_config(&cert, &[b"http/1.1"]))
                .await
                .unwrap();
            ws_echo(&format!("wss://localhost:{port}/ws"), stream).await;
        });
    let (status, printed) = app.stop();
    assert!(status.success(), "{status:?}: {printed}");
    assert!(
        printed.contains("off-reactor polls of ringhop tasks: 0"),
        "{printed}"
    );
}
