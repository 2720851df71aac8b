//! An axum app on ringhop, unchanged: the `Router` below is what an `axum::serve` app would
//! write; only `main` differs. It runs over the hyper transport (HTTP/1.1 and HTTP/2, HTTPS
//! with `TLS_CERT`/`TLS_KEY`), with the `tokio-compat` side runtime for what axum and
//! tower-http take from tokio (the timeout's timer, `WebSocketUpgrade::on_upgrade`'s
//! `tokio::spawn`).
//!
//! ```text
//! cargo run --release --example axum_app    # ADDR=127.0.0.1:8080
//! curl http://127.0.0.1:8080/users/7
//! TRANSPORT=tokio cargo run --release --example axum_app  # the same router on axum::serve
//! ```
//!
//! (The examples get ringhop's `tokio-compat` feature through the dev-dependencies; an app
//! of yours enables it in its Cargo.toml.)
//!
//! Routes: `GET /plaintext`, `GET /json`, `GET /users/{id}` (a path parameter), `GET /slow`
//! (sleeps 5 s behind tower-http's `TimeoutLayer` of 500 ms: answers 408), `GET /peer` (the
//! client's address, from axum's `ConnectInfo`), `GET /ws` (a WebSocket echoing text and
//! binary messages). `REACTORS` sets reactors (ringhop) or worker threads (tokio),
//! `MAX_CONNECTIONS` the connection cap (ringhop; default: from the fd limit),
//! `TOKIO_THREADS` the side runtime's threads (default 1). SIGINT/SIGTERM drain and exit 0.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, Path};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use ringhop::http::hyper::{HyperServer, RequestBody};
use tower_http::timeout::TimeoutLayer;

/// The app, exactly as for `axum::serve`.
pub fn router() -> Router {
    Router::new()
        .route("/plaintext", get(|| async { "Hello, World!" }))
        .route(
            "/json",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "application/json")],
                    r#"{"message":"Hello, World!"}"#,
                )
            }),
        )
        .route(
            "/users/{id}",
            get(|Path(id): Path<u64>| async move { format!("user {id}") }),
        )
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                "too late"
            })
            .layer(TimeoutLayer::with_status_code(
                StatusCode::REQUEST_TIMEOUT,
                Duration::from_millis(500),
            )),
        )
        .route(
            "/peer",
            get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.to_string() }),
        )
        .route("/ws", get(websocket))
}

async fn websocket(ws: WebSocketUpgrade) -> impl IntoResponse {
    ws.on_upgrade(echo)
}

async fn echo(mut socket: WebSocket) {
    while let Some(Ok(message)) = socket.recv().await {
        let echo = matches!(message, Message::Text(_) | Message::Binary(_));
        if echo && socket.send(message).await.is_err() {
            break;
        }
    }
}

fn main() -> std::process::ExitCode {
    common::exit_on_error("axum_app", run)
}

fn run() -> std::io::Result<()> {
    let addr = common::addr_from_env()?;
    let threads: Option<usize> = std::env::var("REACTORS").ok().and_then(|n| n.parse().ok());
    match std::env::var("TRANSPORT").as_deref().unwrap_or("ringhop") {
        "ringhop" => on_ringhop(addr, threads),
        "tokio" => on_axum_serve(addr, threads),
        other => Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("TRANSPORT={other}: use ringhop or tokio"),
        )),
    }
}

/// The change from `axum::serve`: a ringhop runtime with the side tokio runtime, and the
/// router served by `HyperServer` through hyper-util's tower adapter, with the peer address
/// inserted as axum's `ConnectInfo`.
fn on_ringhop(addr: SocketAddr, reactors: Option<usize>) -> std::io::Result<()> {
    let tokio_threads = std::env::var("TOKIO_THREADS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1);
    let mut builder = ringhop::rt::Runtime::builder();
    builder.tokio_compat(tokio_threads);
    if let Some(reactors) = reactors {
        builder.reactors(reactors);
    }
    let runtime = builder.build()?;
    let tls = common::tls_from_env()?;
    let banner = format!(
        "axum on ringhop listening on {}://{addr} with {} reactors ({})",
        if tls.is_some() { "https" } else { "http" },
        runtime.handles().len(),
        runtime.driver()
    );
    let app = router();
    let service = move || hyper_util::service::TowerToHyperService::new(app.clone());
    let server = HyperServer::bind(addr)
        .config(common::config_from_env())
        // axum's ConnectInfo<SocketAddr>, as into_make_service_with_connect_info gives it.
        .request_extension(|info| {
            ConnectInfo(
                info.peer_addr
                    .unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0))),
            )
        })
        .on_listening(move |_| println!("{banner}"));
    match tls {
        Some(tls) => server
            .tls(tls)
            .run::<_, _, RequestBody, _>(&runtime, service)?,
        None => server.run::<_, _, RequestBody, _>(&runtime, service)?,
    }
    let off: u64 = runtime
        .handles()
        .iter()
        .map(|h| h.stats().off_reactor_polls)
        .sum();
    println!("off-reactor polls of ringhop tasks: {off}");
    common::print_stats(&runtime);
    Ok(())
}

/// The same router on `axum::serve`, for comparison.
fn on_axum_serve(addr: SocketAddr, threads: Option<usize>) -> std::io::Result<()> {
    let mut builder = match threads {
        Some(1) => tokio::runtime::Builder::new_current_thread(),
        _ => tokio::runtime::Builder::new_multi_thread(),
    };
    if let Some(threads) = threads.filter(|&n| n > 1) {
        builder.worker_threads(threads);
    }
    builder.enable_all().build()?.block_on(async {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        println!("axum on tokio (axum::serve) listening on http://{addr}");
        axum::serve(
            listener,
            router().into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
    })
}
