//! What every example's `main` shares.

use std::process::ExitCode;

/// Runs an example, printing a startup error as its message (`hello: io_uring_setup failed:
/// EPERM — ...`) rather than Rust's `Debug` form of it, and exiting with status 1.
pub fn exit_on_error(name: &str, run: impl FnOnce() -> std::io::Result<()>) -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("{name}: {err}");
            ExitCode::FAILURE
        }
    }
}
