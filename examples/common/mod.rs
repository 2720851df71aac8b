//! What every example's `main` shares.

use std::process::ExitCode;

/// Sends the library's log lines (rate-limited warnings such as "accept failed") to stderr.
fn init_logging() {
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
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
