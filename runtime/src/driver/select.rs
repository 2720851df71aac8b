//! Choosing the driver: io_uring where this process may use it, epoll elsewhere.

use std::fmt;
use std::io;
use std::sync::OnceLock;

use super::uring::probe;

/// Which kernel interface the reactors use for I/O
/// ([`Builder::driver`](crate::Builder::driver), [`Runtime::driver`](crate::Runtime::driver)).
///
/// The environment variable `RINGHOP_DRIVER` (`io_uring`, `epoll` or `auto`) overrides the
/// builder's choice, so a deployment can switch without a rebuild.
///
/// ```
/// use ringhop_runtime::{Driver, Runtime};
/// let runtime = Runtime::builder().reactors(1).driver(Driver::Epoll).build()?;
/// # if std::env::var_os("RINGHOP_DRIVER").is_none() {
/// assert_eq!(runtime.driver(), Driver::Epoll);
/// # }
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Driver {
    /// io_uring if a probe (a ring with the flags ringhop asks for, every opcode it uses, a
    /// provided-buffer ring) succeeds, else epoll, with one log line (`tracing`, level
    /// `warn`) saying why and how to enable io_uring. The probe runs once per process.
    #[default]
    Auto,
    /// io_uring, or an error that names the cause and the fix.
    IoUring,
    /// epoll, edge-triggered, for kernels and sandboxes that refuse io_uring.
    Epoll,
}

impl fmt::Display for Driver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Driver::Auto => "auto",
            Driver::IoUring => "io_uring",
            Driver::Epoll => "epoll",
        })
    }
}

/// The environment variable that overrides the builder's driver.
const ENV: &str = "RINGHOP_DRIVER";

/// Turns the requested driver (and `RINGHOP_DRIVER`) into `IoUring` or `Epoll`.
pub(crate) fn resolve(requested: Driver, entries: u32, defer_taskrun: bool) -> io::Result<Driver> {
    let requested = match std::env::var(ENV) {
        Ok(value) => match value.trim().to_ascii_lowercase().as_str() {
            "io_uring" | "iouring" | "uring" => Driver::IoUring,
            "epoll" => Driver::Epoll,
            "auto" | "" => Driver::Auto,
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{ENV}={value:?} names no driver; use io_uring, epoll or auto"),
                ))
            }
        },
        Err(_) => requested,
    };
    if requested != Driver::Auto {
        return Ok(requested);
    }
    static PROBED: OnceLock<Driver> = OnceLock::new();
    Ok(
        *PROBED.get_or_init(|| match probe_on_own_thread(entries, defer_taskrun) {
            Ok(()) => Driver::IoUring,
            Err(err) => {
                tracing::warn!(
                    "ringhop: io_uring is not usable here, using epoll instead ({err}). To use \
                 io_uring, allow io_uring_setup, io_uring_enter and io_uring_register in the \
                 seccomp profile (Docker: a custom --security-opt seccomp=profile.json) and set \
                 kernel.io_uring_disabled=0; set {ENV}=epoll to choose epoll without this message"
                );
                Driver::Epoll
            }
        }),
    )
}

/// Runs the probe on a thread of its own: a ring's teardown can queue kernel task work on
/// the thread that created it, which would interrupt that thread's next blocking call with
/// `EINTR` (a caller's `read` with a timeout, for one).
fn probe_on_own_thread(entries: u32, defer_taskrun: bool) -> io::Result<()> {
    std::thread::Builder::new()
        .name("ringhop-probe".to_owned())
        .spawn(move || probe::probe(entries, defer_taskrun))
        .and_then(|thread| {
            thread
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("the io_uring probe panicked")))
        })
}
