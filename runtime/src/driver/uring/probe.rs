//! The io_uring probe behind `Driver::Auto`: can this process use io_uring the way ringhop
//! does? Run once per process (see `driver::select`).

use std::io;

use io_uring::opcode;

use super::buf_ring::BufRing;
use super::setup;

/// The opcodes ringhop submits, with their uapi names for the error message.
const NEEDED: [(u8, &str); 9] = [
    (opcode::Accept::CODE, "ACCEPT"),
    (opcode::Connect::CODE, "CONNECT"),
    (opcode::Recv::CODE, "RECV"),
    (opcode::Send::CODE, "SEND"),
    (opcode::SendMsg::CODE, "SENDMSG"),
    (opcode::Shutdown::CODE, "SHUTDOWN"),
    (opcode::Close::CODE, "CLOSE"),
    (opcode::Read::CODE, "READ"),
    (opcode::AsyncCancel::CODE, "ASYNC_CANCEL"),
];

/// Builds a ring with the flags a reactor would ask for, checks every opcode ringhop uses,
/// and registers (then drops) a provided-buffer ring. `Err` says what failed.
pub(crate) fn probe(entries: u32, defer_taskrun: bool) -> io::Result<()> {
    let (ring, _flags) = setup::build_ring(entries, defer_taskrun)?;
    let submitter = ring.submitter();
    let mut probe = io_uring::Probe::new();
    submitter.register_probe(&mut probe).map_err(|err| {
        io::Error::new(
            err.kind(),
            format!("io_uring_register(PROBE) failed: {err}; the kernel is older than 5.6 or io_uring_register is blocked"),
        )
    })?;
    let missing: Vec<&str> = NEEDED
        .iter()
        .filter(|(code, _)| !probe.is_supported(*code))
        .map(|(_, name)| *name)
        .collect();
    if !missing.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!(
                "this kernel's io_uring lacks IORING_OP_{}; ringhop needs Linux 5.19 or newer",
                missing.join(", IORING_OP_")
            ),
        ));
    }
    let buffers = BufRing::new(&submitter, 2, 4096).map_err(|err| {
        io::Error::new(
            err.kind(),
            format!("registering a provided-buffer ring failed: {err}; ringhop needs Linux 5.19 or newer"),
        )
    })?;
    if buffers.unregister(&submitter).is_err() {
        // Still registered: the kernel may touch it until the ring is gone, so never free it.
        std::mem::forget(buffers);
    }
    Ok(())
}
