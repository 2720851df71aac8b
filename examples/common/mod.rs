//! What every example's `main` shares.

use std::process::ExitCode;

/// Sends the library's log lines (rate-limited warnings such as "accept failed") to stderr.
fn init_logging() {
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

/// Prints the HTTP servers' counters (after shutdown: what was closed by which limit, and
/// the request path's shape per request, which `benches/http/ab.sh` reads).
#[allow(dead_code)]
pub fn print_stats(runtime: &ringhop::rt::Runtime) {
    let stats = ringhop::http::stats(runtime);
    let t = stats.total;
    let [polls, locks, submissions, enters] = t.per_request();
    // Whoever started us may have stopped reading our stdout: that is no reason to fail.
    use std::io::Write;
    let _ = writeln!(
        std::io::stdout(),
        "connections open: {}, ops in flight: {}, live pipes: {}; closed by header timeout: {}, \
         body rate: {}, send rate: {}, idle: {}; rejected: {}; paused at the cap: {}\n\
         requests: {}; per request: {polls:.2} task polls, {locks:.2} pipe locks, \
         {submissions:.2} submissions, {enters:.2} kernel enters",
        t.open_connections,
        t.ops_in_flight,
        stats.live_pipes,
        t.closed_header_timeout,
        t.closed_body_rate,
        t.closed_send_rate,
        t.closed_idle,
        t.rejected,
        t.paused_at_cap,
        t.requests,
    );
}

/// Runs an example, printing a startup error as its message (`hello: io_uring_setup failed:
/// EPERM — ...`) rather than Rust's `Debug` form of it, and exiting with status 1.
/// Log lines go to stderr.
pub fn exit_on_error(name: &str, run: impl FnOnce() -> std::io::Result<()>) -> ExitCode {
    init_logging();
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("{name}: {err}");
            ExitCode::FAILURE
        }
    }
}

/// HTTPS settings from the environment: `TLS_CERT` and `TLS_KEY` (PEM paths) together, or
/// neither (plain HTTP).
#[allow(dead_code)]
pub fn tls_from_env() -> std::io::Result<Option<ringhop::http::tls::TlsAcceptor>> {
    match (std::env::var_os("TLS_CERT"), std::env::var_os("TLS_KEY")) {
        (Some(cert), Some(key)) => {
            ringhop::http::tls::TlsAcceptor::from_pem_files(cert, key).map(Some)
        }
        (None, None) => Ok(None),
        _ => Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "set both TLS_CERT and TLS_KEY (PEM files) to serve HTTPS, or neither",
        )),
    }
}

/// `ADDR` (default `127.0.0.1:8080`).
#[allow(dead_code)]
pub fn addr_from_env() -> std::io::Result<std::net::SocketAddr> {
    std::env::var("ADDR")
        .unwrap_or_else(|_| "127.0.0.1:8080".to_owned())
        .parse()
        .map_err(|err| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("ADDR: {err}"))
        })
}

/// The HTTP servers' limits, with `MAX_CONNECTIONS` (when set) as the connection cap;
/// otherwise the default (derived from the fd limit).
#[allow(dead_code)]
pub fn config_from_env() -> ringhop::http::Config {
    let config = ringhop::http::Config::default();
    match std::env::var("MAX_CONNECTIONS")
        .ok()
        .and_then(|n| n.parse().ok())
    {
        Some(max) => config.max_connections(Some(max)),
        None => config,
    }
}
