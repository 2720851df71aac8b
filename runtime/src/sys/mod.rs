//! The system layer: every plain syscall ringhop makes goes through [`syscall!`]; socket
//! addresses and the eventfd live here too. Nothing in this module knows about reactors.

pub(crate) mod addr;
pub(crate) mod eventfd;

use std::io;
use std::os::fd::RawFd;

/// Calls a libc function and turns `-1` into `io::Error::last_os_error()`.
macro_rules! syscall {
    ($fn:ident ( $($arg:expr),* $(,)? )) => {{
        // SAFETY: the caller passes arguments valid for this libc call.
        let res = unsafe { libc::$fn($($arg),*) };
        if res == -1 {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(res)
        }
    }};
}
pub(crate) use syscall;

/// Closes `fd`, ignoring errors (there is nothing a caller could do about them on drop).
pub(crate) fn close(fd: RawFd) {
    let _ = syscall!(close(fd));
}

/// Sets `O_NONBLOCK` on `fd` (the readiness driver needs it for `accept` and `connect`).
pub(crate) fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    let flags = syscall!(fcntl(fd, libc::F_GETFL))?;
    if flags & libc::O_NONBLOCK == 0 {
        syscall!(fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK))?;
    }
    Ok(())
}

/// `SO_LINGER`: `Some(d)` makes `close` wait up to `d` (whole seconds, rounded up) for
/// unsent data (`Some(ZERO)`: close with a reset, discarding it); `None` restores the
/// default (close at once, send in the background).
pub(crate) fn set_linger(fd: RawFd, linger: Option<std::time::Duration>) -> io::Result<()> {
    let seconds = |d: std::time::Duration| {
        let whole = d.as_secs() + u64::from(d.subsec_nanos() > 0);
        whole.min(i32::MAX as u64) as i32
    };
    let value = libc::linger {
        l_onoff: i32::from(linger.is_some()),
        l_linger: linger.map_or(0, seconds),
    };
    syscall!(setsockopt(
        fd,
        libc::SOL_SOCKET,
        libc::SO_LINGER,
        (&value as *const libc::linger).cast(),
        std::mem::size_of::<libc::linger>() as libc::socklen_t,
    ))
    .map(drop)
}

/// Bytes of this TCP socket's output the peer acknowledged so far (`tcpi_bytes_acked`).
pub(crate) fn tcp_bytes_acked(fd: RawFd) -> io::Result<u64> {
    // SAFETY: all-zero is a valid tcp_info for the kernel to fill.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    syscall!(getsockopt(
        fd,
        libc::IPPROTO_TCP,
        libc::TCP_INFO,
        (&mut info as *mut libc::tcp_info).cast(),
        &mut len,
    ))?;
    Ok(info.tcpi_bytes_acked)
}

/// Sets an integer socket option.
pub(crate) fn set_int_option(fd: RawFd, level: i32, name: i32, value: i32) -> io::Result<()> {
    syscall!(setsockopt(
        fd,
        level,
        name,
        (&value as *const i32).cast(),
        std::mem::size_of::<i32>() as libc::socklen_t,
    ))
    .map(drop)
}
