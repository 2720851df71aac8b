//! Creating the ring: the fastest flags the kernel accepts, and errors that say what to do.

use std::io;

use io_uring::IoUring;

/// The io_uring setup flags a reactor's ring got (the kernel may refuse some).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RingFlags {
    /// `IORING_SETUP_SINGLE_ISSUER`.
    pub single_issuer: bool,
    /// `IORING_SETUP_DEFER_TASKRUN`.
    pub defer_taskrun: bool,
    /// `IORING_SETUP_COOP_TASKRUN` (with `TASKRUN_FLAG`).
    pub coop_taskrun: bool,
}

/// Builds a ring on the calling thread (which becomes its single issuer).
///
/// Tries `SINGLE_ISSUER | DEFER_TASKRUN | COOP_TASKRUN | TASKRUN_FLAG` (the last two only when
/// `defer_taskrun` is asked for), then without `DEFER_TASKRUN`, then without
/// `SINGLE_ISSUER`, then plain; `EINVAL` means "this kernel does not know a flag" and moves to
/// the next attempt, any other error is final.
pub(crate) fn build_ring(entries: u32, defer_taskrun: bool) -> io::Result<(IoUring, RingFlags)> {
    let attempts = [
        RingFlags {
            single_issuer: true,
            defer_taskrun: true,
            coop_taskrun: true,
        },
        RingFlags {
            single_issuer: true,
            defer_taskrun: false,
            coop_taskrun: true,
        },
        RingFlags {
            single_issuer: false,
            defer_taskrun: false,
            coop_taskrun: true,
        },
        RingFlags {
            single_issuer: false,
            defer_taskrun: false,
            coop_taskrun: false,
        },
    ];
    let mut last_error = None;
    for flags in attempts
        .into_iter()
        .filter(|flags| defer_taskrun || !flags.defer_taskrun)
    {
        let mut builder = IoUring::builder();
        builder.setup_cqsize(entries.saturating_mul(4));
        if flags.single_issuer {
            builder.setup_single_issuer();
        }
        if flags.defer_taskrun {
            builder.setup_defer_taskrun();
        }
        if flags.coop_taskrun {
            builder.setup_coop_taskrun().setup_taskrun_flag();
        }
        match builder.build(entries) {
            Ok(ring) => return Ok((ring, flags)),
            Err(err) if err.raw_os_error() == Some(libc::EINVAL) => last_error = Some(err),
            Err(err) => return Err(explain_setup_error(err)),
        }
    }
    Err(explain_setup_error(last_error.unwrap_or_else(|| {
        io::Error::from_raw_os_error(libc::EINVAL)
    })))
}

/// Turns an `io_uring_setup` failure into an error that names the cause and the fix.
pub(crate) fn explain_setup_error(err: io::Error) -> io::Error {
    let advice = match err.raw_os_error() {
        Some(libc::EPERM) => {
            "EPERM — io_uring is disabled by seccomp (containers' default profiles block it) or \
             by the sysctl kernel.io_uring_disabled; allow io_uring_setup/io_uring_enter/\
             io_uring_register in the seccomp profile, or set kernel.io_uring_disabled=0"
        }
        Some(libc::ENOMEM) => {
            "ENOMEM — the ring could not be allocated: the locked-memory limit is too low \
             (raise `ulimit -l`, or LimitMEMLOCK in systemd) or ring_entries is too large"
        }
        Some(libc::ENOSYS) => {
            "ENOSYS — this kernel has no io_uring; ringhop needs Linux 5.19 or newer built with \
             CONFIG_IO_URING"
        }
        Some(libc::EINVAL) => {
            "EINVAL — the kernel rejected the ring parameters; ringhop needs Linux 5.19 or newer \
             and ring_entries a power of two up to 32768"
        }
        _ => "unexpected error",
    };
    io::Error::new(
        err.kind(),
        format!("io_uring_setup failed: {advice} ({err})"),
    )
}
