//! The native HTTP/1.1 server: `cargo run --release --example hello`, then
//! `curl -i http://127.0.0.1:8080/plaintext`.
//!
//! `ADDR` (default `127.0.0.1:8080`), `REACTORS` (default: all cores) and `MAX_CONNECTIONS`
//! (default: from the fd limit) configure it. Routes:
//! `GET /` and `GET /plaintext` → "Hello, World!", `GET /json` → a JSON greeting,
//! `POST /echo` → the request body with its Content-Type; HEAD on each GET route, 404
//! elsewhere, 405 with `Allow` for a wrong method. SIGINT/SIGTERM drain and exit 0.
//! `RINGHOP_DEFER_TASKRUN=0` runs the rings without `IORING_SETUP_DEFER_TASKRUN`.
//! `TLS_CERT` and `TLS_KEY` (PEM files) serve the same routes over HTTPS.

mod common;

use ringhop::http::{Request, Response, Router, Server};
use ringhop::rt::Runtime;

async fn plaintext(_req: &mut Request<'_>, res: &mut Response<'_>) -> std::io::Result<()> {
    res.header("Content-Type", "text/plain")
        .body(b"Hello, World!");
    Ok(())
}

async fn json(_req: &mut Request<'_>, res: &mut Response<'_>) -> std::io::Result<()> {
    res.header("Content-Type", "application/json")
        .body(br#"{"message":"Hello, World!"}"#);
    Ok(())
}

async fn echo(req: &mut Request<'_>, res: &mut Response<'_>) -> std::io::Result<()> {
    if let Some(content_type) = req.header("content-type") {
        res.header("Content-Type", content_type);
    }
    // The stream starts with the first chunk, so a malformed body is still answered 400.
    while let Some(chunk) = req.body().chunk().await? {
        res.write_chunk(chunk).await?;
    }
    res.finish();
    Ok(())
}

fn main() -> std::process::ExitCode {
    common::exit_on_error("hello", run)
}

fn run() -> std::io::Result<()> {
    let addr = common::addr_from_env()?;
    let mut builder = Runtime::builder();
    // RINGHOP_DEFER_TASKRUN=0 sets the ring up without DEFER_TASKRUN (for measurements).
    if std::env::var("RINGHOP_DEFER_TASKRUN").as_deref() == Ok("0") {
        builder.defer_taskrun(false);
    }
    if let Some(reactors) = std::env::var("REACTORS").ok().and_then(|n| n.parse().ok()) {
        builder.reactors(reactors);
    }
    let runtime = builder.build()?;
    let router = Router::new()
        .get("/", plaintext)
        .get("/plaintext", plaintext)
        .get("/json", json)
        .post("/echo", echo);
    let reactors = runtime.handles().len();
    let config = common::config_from_env();
    let driver = runtime.driver();
    let tls = common::tls_from_env()?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let server = Server::bind(addr).config(config).on_listening(move |addr| {
        println!("hello listening on {scheme}://{addr} with {reactors} reactors ({driver})")
    });
    match tls {
        Some(tls) => server.tls(tls).run(&runtime, router)?,
        None => server.run(&runtime, router)?,
    }
    common::print_stats(&runtime);
    Ok(())
}
